"""`make deploy-local ENV=dev` / `make destroy-local ENV=dev`: the real `cdk deploy`, rehearsed on this machine.

`up` starts a moto server this rehearsal owns (it keeps running, so `jobstack --env dev --endpoint-url URL ...`
works against it afterwards), runs the pinned CDK CLI's real `cdk bootstrap` and `cdk deploy JobsStack-ENV`,
migrates a database of its own, runs `jobstack doctor`, publishes a few jobs and works them with `jobstack local`
on the deployed queues, as the event source would, then leaves `jobstack console` running on it and prints its
URL. `down` runs the real `cdk destroy`, stops the server and
drops the database. State lives in `.build/rehearsal-ENV/`.

What moto makes us handle (each is AWS's behaviour being stricter, or moto's gap):
- the CLI sends `TemplateURL` as `http://<endpoint>/<bucket>/<key>`, which moto reads as a bucket only when
  the host is `localhost` (with `127.0.0.1` it takes `127` for the bucket): the endpoint is `localhost`;
- moto builds no outputs from a change set, so the deploy uses `--method=direct`;
- moto's CloudFormation skips `AWS::SecretsManager::Secret` (and alarms, queue and topic policies): the
  rehearsal creates the secret first and names it with `-c jobstack-overrides=...`;
- the CLI caches the account per access key under the home directory: `CDK_HOME` is the rehearsal's own.
moto also runs the deployed event source mapping, which takes messages and cannot invoke the function (its
Lambda needs Docker): the rehearsal pauses it (`jobstack pause`) and plays the event source with `jobstack local`.
What it does not prove: alarms, queue and topic policies (moto skips them), IAM (moto does not enforce it
here; tests/infra/test_iam_execution.py does), and the Lambda runtime (no Lambda code runs: `jobstack local`
plays the event source with the same handler).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, NoReturn

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from cli.local_ports import free_port, wait_until_listening
from stacks.overrides import OVERRIDES_VARIABLE

ROOT = Path(__file__).resolve().parent.parent
ACCOUNT, REGION = "123456789012", "us-east-1"  # moto's account
ADMIN_URL = (
    os.environ.get("REHEARSAL_DATABASE_ADMIN_URL")
    or os.environ.get("TEST_DATABASE_URL")
    or ("postgresql://postgres@127.0.0.1:5432/postgres")
)
DEMO_JOBS = 5


class RehearsalError(Exception):
    """One line: what failed and what to do."""


def state_dir(env: str) -> Path:
    return ROOT / ".build" / f"rehearsal-{env}"


def aws_environ(port: int, env: str) -> dict[str, str]:
    """The environment for the CDK CLI and `jobstack`: moto's endpoint on `localhost`, dummy credentials, and a
    CDK_HOME of the rehearsal's own."""
    return {
        **os.environ,
        "AWS_ENDPOINT_URL": f"http://localhost:{port}",
        "AWS_ACCESS_KEY_ID": "rehearsal",
        "AWS_SECRET_ACCESS_KEY": "rehearsal",
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "CDK_HOME": str(state_dir(env) / "cdk-home"),
        "CDK_DISABLE_CLI_TELEMETRY": "true",
        "JSII_SILENCE_WARNING_UNTESTED_NODE_VERSION": "1",
        "PATH": f"{ROOT / 'node_modules' / '.bin'}{os.pathsep}{Path(sys.executable).parent}{os.pathsep}"
        + os.environ.get("PATH", ""),
    }


def start_server(env: str) -> int:
    folder = state_dir(env)
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log = (folder / "moto.log").open("w")
    process = subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # it outlives `make deploy-local`, until `make destroy-local`
    )
    if not wait_until_listening(port, seconds=20, alive=lambda: process.poll() is None):
        process.kill()
        raise RehearsalError(f"moto's server did not start on port {port}: see {folder / 'moto.log'}")
    (folder / "server.json").write_text(json.dumps({"pid": process.pid, "port": port}))
    return port


def start_console(env: str, environ: dict[str, str], port: int) -> str:
    """`jobstack console` on the rehearsal, in the background until `make destroy-local`: its URL (with its token)."""
    folder = state_dir(env)
    log_path = folder / "console.log"
    command = [sys.executable, "-m", "cli", "--env", env, "--endpoint-url", f"http://localhost:{port}", "console",
               "--port", "0"]  # fmt: skip
    with log_path.open("w") as log:
        process = subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
            command, cwd=ROOT, env=environ, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    (folder / "console.json").write_text(json.dumps({"pid": process.pid}))
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and process.poll() is None:
        found = re.search(r"(http://\S+\?token=\S+)", log_path.read_text())
        if found:
            return found.group(1)
        time.sleep(0.1)
    raise RehearsalError(f"`jobstack console` did not start: see {log_path}")


def stop_server(env: str, state: str = "server.json") -> None:
    server = state_dir(env) / state
    if not server.exists():
        return
    pid = json.loads(server.read_text())["pid"]
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            os.kill(pid, 0)  # raises ProcessLookupError once it is gone
            time.sleep(0.1)
        os.killpg(pid, signal.SIGKILL)
    server.unlink()


def running_port(env: str) -> int | None:
    server = state_dir(env) / "server.json"
    if not server.exists():
        return None
    state = json.loads(server.read_text())
    try:
        os.kill(state["pid"], 0)
    except ProcessLookupError:
        return None
    return int(state["port"])


def _database_name(env: str) -> str:
    """Per checkout as well as per environment: two clones rehearsing at once on one server never share it."""
    checkout = hashlib.sha256(str(ROOT).encode()).hexdigest()[:8]
    return f"jobstack_rehearsal_{env}_{checkout}"


def create_database(env: str) -> str:
    """A fresh database on the local PostgreSQL (ADMIN_URL), or an SQLite file when none answers."""
    server = make_url(ADMIN_URL).set(drivername="postgresql+psycopg")
    name = _database_name(env)
    engine = create_engine(server, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3})
    try:
        with engine.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception:
        sqlite = state_dir(env) / "rehearsal.sqlite3"
        sqlite.unlink(missing_ok=True)
        print(f"note: no PostgreSQL at {server.render_as_string()}; the rehearsal uses SQLite ({sqlite})")
        return f"sqlite:///{sqlite}"
    finally:
        engine.dispose()
    # The local server has no TLS; the URL's own sslmode wins over the stack's verify-full default.
    return server.set(database=name, query={"sslmode": "disable"}).render_as_string(hide_password=False)


def drop_database(env: str) -> None:
    server = make_url(ADMIN_URL).set(drivername="postgresql+psycopg")
    engine = create_engine(server, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3})
    try:
        with engine.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{_database_name(env)}" WITH (FORCE)'))
    except Exception:
        (state_dir(env) / "rehearsal.sqlite3").unlink(missing_ok=True)
    finally:
        engine.dispose()


def _run(command: list[str], environ: dict[str, str], what: str, *, cwd: Path = ROOT) -> None:
    print(f"$ {shlex.join(command)}", flush=True)
    if subprocess.run(command, cwd=cwd, env=environ, check=False).returncode != 0:  # noqa: S603 - cdk, ours
        raise RehearsalError(f"{what} failed (its output is above)")


def _jobs(args: list[str], environ: dict[str, str], env: str, port: int, *, check: bool = True) -> int:
    command = [sys.executable, "-m", "cli", "--env", env, "--endpoint-url", f"http://localhost:{port}", *args]
    print(f"$ {shlex.join(['.venv/bin/jobstack', '--env', env, '--endpoint-url', f'http://localhost:{port}', *args])}",
          flush=True)  # fmt: skip
    code = subprocess.run(command, cwd=ROOT, env=environ, check=False).returncode  # noqa: S603 - ours
    if check and code != 0:
        raise RehearsalError(f"jobs {args[0]} failed (its output is above)")
    return code


def up(env: str, settings: dict[str, Any] | None = None) -> None:
    """`settings`: more of the environment's settings for this deploy (e.g. `pools`), as -c overrides."""
    import boto3

    check_environment(env)  # before a server, a database or a bootstrap exists
    if running_port(env) is not None:
        down(env)
    port = start_server(env)
    environ = aws_environ(port, env)
    endpoint = environ["AWS_ENDPOINT_URL"]
    database_url = create_database(env)
    secret_value = json.dumps({"url": database_url}) if database_url.startswith("sqlite") else database_url
    secrets = boto3.client("secretsmanager", endpoint_url=endpoint, region_name=REGION,
                           aws_access_key_id="rehearsal", aws_secret_access_key="rehearsal")  # noqa: S106  # fmt: skip
    secret_arn = secrets.create_secret(Name=f"jobstack-rehearsal-{env}", SecretString=secret_value)["ARN"]
    # The secret exists before the stack (moto's CloudFormation would not create it); termination
    # protection off, so `make destroy-local` can delete even prod's rehearsal.
    overrides = {env: {**(settings or {}), "database_secret_arn": secret_arn, "termination_protection": False}}
    environ[OVERRIDES_VARIABLE] = json.dumps(overrides)  # `jobstack` reads the settings this deploy used
    # Outside the project (no cdk.json): with its environment named, bootstrap needs no app, and the CLI
    # would otherwise synthesize all three stacks first (3 s instead of 9 s here).
    _run(["cdk", "bootstrap", f"aws://{ACCOUNT}/{REGION}"], environ, "cdk bootstrap", cwd=state_dir(env))
    _run(
        ["cdk", "deploy", f"JobsStack-{env}", *_output(env), "--method=direct", "--require-approval", "never",
         "-c", f"jobstack-overrides={json.dumps(overrides)}",
         "--outputs-file", str(state_dir(env) / "outputs.json")],
        environ,
        "cdk deploy",
    )  # fmt: skip
    environ.pop("AWS_ENDPOINT_URL")  # `jobstack` is given --endpoint-url, as a user would
    _jobs(["migrate"], environ, env, port)
    _jobs(["doctor"], environ, env, port)  # what only AWS can answer is marked "expected on an emulator"
    # moto runs the deployed event source mapping: it receives the messages and fails to invoke the function
    # (moto's Lambda needs Docker), so SQS's redrive would dead-letter them. Pause it, as an operator would
    # for maintenance, and play the event source with `jobstack local` on the same queues.
    pools = list(json.loads(outputs(env)["Routes"])["queues"])
    for pool in pools:
        _jobs(["pause", "--pool", pool], environ, env, port)
    for n in range(DEMO_JOBS):  # routed to test-echo's pool by the stack's Routes output
        _jobs(["publish", "test-echo", "--payload", json.dumps({"n": n})], environ, env, port)
    for pool in pools:  # each pool's worker on its own queue
        _jobs(["local", "--pool", pool, "--until-empty", "--concurrency", "2"], environ, env, port)
    shell_file = shlex.quote(str(write_shell_environment(env, overrides).relative_to(ROOT)))
    console_url = start_console(env, environ, port)
    base = f".venv/bin/jobstack --env {env} --endpoint-url http://localhost:{port}"
    # moto runs no Lambda: the deployed workers stay paused, and a job published later waits for these
    work = "".join(
        f"  {base} local{'' if pools == ['default'] else f' --pool {pool}'} --until-empty   # works it\n"
        for pool in pools
    )
    print(f"\nThe jobstack console of JobsStack-{env} (until make destroy-local): {console_url}")
    print(
        f"\nJobsStack-{env} is deployed on moto at http://localhost:{port} and keeps running. In a shell:\n"
        f"  source {shell_file}   # moto's dummy credentials, and the settings this deploy used\n"
        f"  {base} stats\n"
        f"Its workers are paused (moto runs no Lambda): a job published from now on waits until you run\n"
        f"{work}"
        f"  make destroy-local ENV={env}   # cdk destroy, then stop the server and drop the database"
    )


def check_environment(env: str) -> None:
    """The environment must be one of cdk.json's: said in one line before anything starts."""
    from stacks.settings import SettingsError, load_settings

    try:
        load_settings(json.loads((ROOT / "cdk.json").read_text())["context"], env)
    except SettingsError as err:
        raise RehearsalError(str(err)) from None


def write_shell_environment(env: str, overrides: dict[str, Any]) -> Path:
    """What a plain shell needs for `jobstack --endpoint-url` against this rehearsal: moto accepts any
    credentials but boto3 still wants some, and `jobstack` reads the settings this deploy used."""
    path = state_dir(env) / "env.sh"
    variables = {
        "AWS_ACCESS_KEY_ID": "rehearsal",
        "AWS_SECRET_ACCESS_KEY": "rehearsal",
        "AWS_DEFAULT_REGION": REGION,
        OVERRIDES_VARIABLE: json.dumps(overrides),
    }
    path.write_text("".join(f"export {name}={shlex.quote(value)}\n" for name, value in variables.items()))
    return path


def outputs(env: str) -> dict[str, str]:
    found: dict[str, str] = json.loads((state_dir(env) / "outputs.json").read_text())[f"JobsStack-{env}"]
    return found


def _output(env: str) -> list[str]:
    """Each rehearsal synthesizes into its own directory: the CDK CLI locks its output directory, so two
    environments' rehearsals (or a rehearsal beside `make synth`) would otherwise refuse each other."""
    return ["--output", str(state_dir(env) / "cdk.out")]


def _assembly(env: str) -> list[str]:
    """What `cdk destroy` reads: the cloud assembly this rehearsal deployed, if it is still there (no
    synthesis: the stack to delete is the one deployed), else the app, synthesized as for the deploy. The
    CLI's `--app` takes "a cloud assembly directory" as well as a command
    (https://docs.aws.amazon.com/cdk/v2/guide/ref-cli-cmd.html)."""
    assembly = state_dir(env) / "cdk.out"
    return ["--app", str(assembly)] if (assembly / "manifest.json").exists() else _output(env)


def down(env: str) -> None:
    if not state_dir(env).exists() and running_port(env) is None:
        print(f"JobsStack-{env} has no rehearsal on this machine: nothing to destroy (make deploy-local ENV={env})")
        return
    port = running_port(env)
    if port is not None:
        _run(["cdk", "destroy", f"JobsStack-{env}", *_assembly(env), "--force"], aws_environ(port, env), "cdk destroy")
    stop_server(env, "console.json")
    stop_server(env)
    drop_database(env)
    shutil.rmtree(state_dir(env), ignore_errors=True)
    print(f"JobsStack-{env}'s rehearsal is gone")


class _MakeTargetParser(argparse.ArgumentParser):
    """Run by `make deploy-local` / `make destroy-local`: a mistake is one line naming the make variable."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {message.removeprefix('argument --settings: ')}\n")


def settings_json(text: str) -> dict[str, object]:
    """`SETTINGS='...'`: a JSON object, or one line saying what to give instead."""
    example = """'{"pools": {...}}'"""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise argparse.ArgumentTypeError(f"SETTINGS is not JSON ({err.msg}): give an object like {example}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"SETTINGS must be a JSON object like {example}, got {text!r}")
    return value


def main(argv: list[str] | None = None) -> int:
    parser = _MakeTargetParser(prog="python -m cli.rehearsal", description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["up", "down"])
    parser.add_argument("--env", default="dev")
    parser.add_argument(
        "--settings", type=settings_json, help="more settings for this deploy, as JSON: '{\"pools\": {...}}'"
    )
    args = parser.parse_args(argv)
    try:
        if args.action == "up":
            up(args.env, args.settings)
        else:
            down(args.env)
    except RehearsalError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
