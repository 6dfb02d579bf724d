# A column of the customer's name and email with "_" read as a space, and the FULLTEXT index on it.
# InnoDB's FULLTEXT parser takes "_" for a letter: on (name, email) "lindqvist" never finds
# "bianca_lindqvist@example.com". The old index stays until the new one is built.

import django.db.models.functions.text
from django.db import migrations, models

#: Customer search (admin_site.changelists.search) matches words with MATCH ... AGAINST on MySQL/MariaDB.
FULLTEXT_INDEX = "customer_search_words_ft"
OLD_FULLTEXT_INDEX = "customer_name_email_ft"


def swap_fulltext_index(apps, schema_editor):
    """On MySQL/MariaDB, the FULLTEXT index moves from (name, email) to ``search_words``."""
    if schema_editor.connection.vendor == "mysql":
        schema_editor.execute(f"CREATE FULLTEXT INDEX {FULLTEXT_INDEX} ON customers_customer (search_words)")
        schema_editor.execute(f"DROP INDEX {OLD_FULLTEXT_INDEX} ON customers_customer")


def restore_fulltext_index(apps, schema_editor):
    if schema_editor.connection.vendor == "mysql":
        schema_editor.execute(f"CREATE FULLTEXT INDEX {OLD_FULLTEXT_INDEX} ON customers_customer (name, email)")
        schema_editor.execute(f"DROP INDEX {FULLTEXT_INDEX} ON customers_customer")


class Migration(migrations.Migration):
    dependencies = [
        ("customers", "0003_address_city_customer_index"),
    ]

    operations = [
        migrations.AddField(
            model_name="customer",
            name="search_words",
            field=models.GeneratedField(
                db_persist=True,
                expression=django.db.models.functions.text.Replace(
                    django.db.models.functions.text.Concat("name", models.Value(" "), "email"),
                    models.Value("_"),
                    models.Value(" "),
                ),
                output_field=models.CharField(max_length=455),
            ),
        ),
        migrations.RunPython(swap_fulltext_index, restore_fulltext_index, atomic=False, elidable=False),
    ]
