"""The users panel: Django's own user/group admins, bound to the panel, with profiles."""

from django.contrib import admin
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group, User
from django.db.models import Count

import admin_site
from admin_site.options import DatabaseAdminMixin, DatabaseModelAdmin, DatabaseStackedInline
from console.profiles.models import Profile, Team


class ProfileInline(DatabaseStackedInline):
    model = Profile
    can_delete = False
    filter_horizontal = ["teams"]


@admin_site.register(User)
class ConsoleUserAdmin(DatabaseAdminMixin, UserAdmin):
    """Django's user admin, except that only a superuser grants privilege or touches a superuser.

    Stock ``change_user`` is a superuser in waiting: its holder may tick
    ``is_superuser`` on any account, or set a superuser's password.  Here the
    privilege fields are read-only to anyone else, and a superuser's account
    (its form, its password) is a superuser's to change; the import applies the
    same rule (``DatabaseModelResource.superuser_only_fields``).
    """

    inlines = [ProfileInline]
    list_filter = ["is_staff", "is_superuser", "is_active", "groups", "profile__teams"]
    #: What grants privilege: read-only unless the user is a superuser.
    privilege_fields = ("is_superuser", "is_staff", "groups", "user_permissions")

    def get_readonly_fields(self, request, obj=None):
        readonly = super().get_readonly_fields(request, obj)
        if request.user.is_superuser:
            return readonly
        return (*readonly, *(f for f in self.privilege_fields if f not in readonly))

    def has_change_permission(self, request, obj=None):
        if obj is not None and obj.is_superuser and not request.user.is_superuser:
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        if obj is not None and obj.is_superuser and not request.user.is_superuser:
            return False
        return super().has_delete_permission(request, obj)


@admin_site.register(Group)
class ConsoleGroupAdmin(DatabaseAdminMixin, GroupAdmin):
    pass


@admin_site.register(Team)
class TeamAdmin(DatabaseModelAdmin):
    list_display = ["name", "member_count"]
    search_fields = ["name"]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(member_total=Count("members"))

    @admin.display(description="members", ordering="member_total")
    def member_count(self, obj):
        return obj.member_total


@admin_site.register(Profile)
class ProfileAdmin(DatabaseModelAdmin):
    list_display = ["user", "display_name", "timezone"]
    list_filter = ["teams", "timezone"]
    search_fields = ["user__username", "display_name"]
    autocomplete_fields = ["user"]
    filter_horizontal = ["teams"]
