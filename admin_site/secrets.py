"""Which fields are secrets: their values never leave the database.

One answer for every path that shows or moves values (exports, import
previews, history, conflict messages): a password hash, a second-factor
device's key, a backup code.  A console model names its own in
``console_secret_fields``; models of other apps are listed here.
"""

#: Secret on every model: any field whose name contains one of these.
SECRET_WORDS = ("password",)
#: Secret fields of models the console does not define (``app_label.model_name``).
OTHER_APPS = {
    "otp_totp.totpdevice": ("key",),
    "otp_static.statictoken": ("token",),
}


def secret_field_names(model):
    """Lower-cased names of ``model``'s secret fields (besides any name containing a ``SECRET_WORDS`` word)."""
    own = getattr(model, "console_secret_fields", ())
    return {name.lower() for name in (*SECRET_WORDS, *own, *OTHER_APPS.get(model._meta.label_lower, ()))}


def is_secret(model, name):
    """Whether ``name`` (a field, attribute or column of ``model``) holds a secret."""
    name = name.lower()
    return name in secret_field_names(model) or any(word in name for word in SECRET_WORDS)
