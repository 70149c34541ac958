"""A Django 6 view: POST /signup creates the user and enqueues its welcome e-mail, a Django task, in one
transaction. `send_welcome_email.enqueue(...)` writes the job on Django's own connection inside
`transaction.atomic()` (jobstack.django), and its message is sent when Django commits: a failed signup rolls
both back and nothing runs. GET /tasks/<id> reads the task's result, from any process.

    pip install "/path/to/your/jobstack-checkout[web]" "django>=6"

Run it: examples/django_signup/README.md.
"""

from __future__ import annotations

from django.db import IntegrityError, connection, transaction
from django.http import HttpRequest, JsonResponse
from django.tasks.exceptions import TaskResultDoesNotExist

from examples.django_signup.tasks import send_welcome_email
from examples.welcome import JOB_TYPE, BadSignup, signup_email
from jobstack import InvalidPayload, validate_payload  # type: ignore[import-not-found]


def signup(request: HttpRequest) -> JsonResponse:
    try:
        email = signup_email(request.body)
        validate_payload(JOB_TYPE, {"email": email})  # the address's rule, shared with the other examples
    except (BadSignup, InvalidPayload) as err:
        return JsonResponse({"error": str(err)}, status=400)
    try:
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("INSERT INTO users (email) VALUES (%s) RETURNING id", [email])
                user_id = cursor.fetchone()[0]
            result = send_welcome_email.enqueue(email)
    except IntegrityError:
        return JsonResponse({"error": f"{email} is already signed up"}, status=409)
    return JsonResponse({"user": user_id, "task": result.id}, status=201)


def task_status(_request: HttpRequest, result_id: str) -> JsonResponse:
    try:
        result = send_welcome_email.get_result(result_id)
    except TaskResultDoesNotExist:
        return JsonResponse({"error": f"no task {result_id}"}, status=404)
    finished = result.return_value if result.status == "SUCCESSFUL" else None
    return JsonResponse({"status": result.status, "attempts": result.attempts, "return_value": finished})
