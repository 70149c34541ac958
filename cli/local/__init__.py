"""`jobstack local`: the whole system on one machine, by concern: the command (`command.py`), the event source
mapping it emulates (`runner.py`, with Lambda's SQS event shape in `sqs_event.py`), the embedded SQS
(`embedded.py`) and the live summary it prints (`summary.py`)."""
