from django.urls import path

from examples.django_signup.views import signup, task_status

urlpatterns = [path("signup", signup), path("tasks/<str:result_id>", task_status)]
