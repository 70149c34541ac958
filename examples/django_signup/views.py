"""A Django view: POST /signup creates the user and enqueues its welcome e-mail in one transaction.

Django 4.2+ runs on psycopg 3, so the job row is written on Django's own connection (inside
`transaction.atomic()`), and `transaction.on_commit` sends the message once Django has committed; a failed
signup rolls both back and nothing is sent; a payload the job's schema refuses is a 400 with the schema's
one line, and nothing is written.

    pip install "/path/to/your/jobstack-checkout[web]" django

Run it: examples/django_signup/README.md.
"""

from __future__ import annotations

from django.db import IntegrityError, connection, transaction
from django.http import HttpRequest, JsonResponse

from examples.welcome import JOB_TYPE, BadSignup, signup_email
from jobstack import InvalidPayload, PayloadTooLarge, Queue, enqueue, send  # type: ignore[import-not-found]

#: Set at start-up (settings, or the app's ready()); a boto3 SQS client and the stack's QueueUrl output.
QUEUE: Queue | None = None


def signup(request: HttpRequest) -> JsonResponse:
    assert QUEUE is not None, "set examples.django_signup.views.QUEUE at start-up"
    queue = QUEUE
    try:
        email = signup_email(request.body)
    except BadSignup as err:
        return JsonResponse({"error": str(err)}, status=400)
    try:
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("INSERT INTO users (email) VALUES (%s) RETURNING id", [email])
                user_id = cursor.fetchone()[0]
            job = enqueue(connection.connection, JOB_TYPE, {"email": email})
            transaction.on_commit(lambda: send([job], queue=queue))
    except (InvalidPayload, PayloadTooLarge) as err:  # raised inside atomic(): the user row is rolled back too
        return JsonResponse({"error": str(err)}, status=400)
    except IntegrityError:
        return JsonResponse({"error": f"{email} is already signed up"}, status=409)
    return JsonResponse({"user": user_id, "job": str(job.id)}, status=201)
