"""`jobstack`' commands, one module a concern: jobs (publish, show, list, retry, cancel, prune, migrate), queues
(stats, routes, dlq, logs, pause), schedules, doctor, cost and shell completion. cli/main.py's COMMANDS table
names each; what the commands share with the console (retrying, cancelling, dead letters) stays in cli/."""
