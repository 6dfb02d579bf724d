"""A test-only model with every way Django fills a field the file leaves out."""

from django.db import models
from django.db.models import F


def default_colour():
    """A callable default: called once per new row."""
    return "grey"


class Gadget(models.Model):
    """A generated column, a database default, an ``auto_now`` timestamp and a callable default."""

    name = models.CharField(max_length=100)
    price = models.IntegerField()
    quantity = models.IntegerField(default=1)
    total = models.GeneratedField(
        expression=F("price") * F("quantity"), output_field=models.IntegerField(), db_persist=True
    )
    status = models.CharField(max_length=20, db_default="draft")
    colour = models.CharField(max_length=20, default=default_colour)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        app_label = "importmodels"

    def __str__(self):
        return self.name
