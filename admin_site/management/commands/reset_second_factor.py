"""Remove a user's second-factor devices (a lost phone): their next login on a panel that requires one enrols anew."""

from django.contrib.auth import get_user_model
from django.core.management import BaseCommand, CommandError
from django.db import router, transaction
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice


class Command(BaseCommand):
    help = "Delete USERNAME's authenticator apps and backup codes; the next login leads them to enrol again."

    def add_arguments(self, parser):
        parser.add_argument("username")

    def handle(self, *args, username, **options):
        User = get_user_model()
        alias = router.db_for_write(TOTPDevice)
        try:
            user = User._default_manager.db_manager(router.db_for_read(User)).get_by_natural_key(username)
        except User.DoesNotExist:
            raise CommandError(f"No user {username!r}.") from None
        with transaction.atomic(using=alias):
            apps, _ = TOTPDevice.objects.using(alias).filter(user_id=user.pk).delete()
            _, deleted = StaticDevice.objects.using(alias).filter(user_id=user.pk).delete()
        backups = deleted.get(StaticDevice._meta.label, 0)
        self.stdout.write(
            f"{username}: removed {apps} authenticator(s) and {backups} backup code set(s) with their codes."
        )
