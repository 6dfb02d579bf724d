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
    inlines = [ProfileInline]
    list_filter = ["is_staff", "is_superuser", "is_active", "groups", "profile__teams"]


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
