from django.urls import path

from examples.django_signup.views import signup

urlpatterns = [path("signup", signup)]
