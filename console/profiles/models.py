"""Staff profiles and teams, kept beside Django's auth tables in ``users``."""

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models


class Team(models.Model):
    name = models.CharField(max_length=100, unique=True)
    description = models.TextField(blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name


class Profile(models.Model):
    """One per user: what auth.User does not hold."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="profile")
    display_name = models.CharField(max_length=150, blank=True)
    phone = models.CharField(
        max_length=32,
        blank=True,
        validators=[RegexValidator(r"^\+?[0-9 ()-]{6,31}$", "Enter a phone number: digits, spaces, +, - and ().")],
    )
    timezone = models.CharField(max_length=64, default="UTC", help_text="IANA time zone, e.g. Europe/Berlin.")
    teams = models.ManyToManyField(Team, blank=True, related_name="members")

    class Meta:
        ordering = ["user__username"]

    def __str__(self):
        return self.display_name or self.user.get_username()
