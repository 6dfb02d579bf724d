"""Import and export for every panel's ModelAdmin, bound to the panel's database.

django-import-export's admin views do the form work; the hooks here make them
use ``DatabaseModelResource`` on the panel's alias, the console's strict file
formats, uploads every server process can read, permissions from the model's
own add/change/view permissions, streamed exports and the audit trail.
"""

from django.contrib import messages
from django.contrib.admin.options import IncorrectLookupParameters
from django.core.exceptions import BadRequest, FieldError, PermissionDenied, ValidationError
from django.db import Error as DatabaseDriverError
from django.db import connections
from django.forms import MultipleChoiceField, MultipleHiddenInput
from django.http import HttpResponseRedirect, StreamingHttpResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.decorators import method_decorator
from django.utils.http import content_disposition_header
from django.views.decorators.http import require_POST
from import_export.admin import ExportActionMixin, ImportMixin
from import_export.forms import ConfirmImportForm, ImportForm

from admin_site.changelists.values import column_value
from admin_site.pinning import allow_replica_reads, read_database
from admin_site.transfers import background
from admin_site.transfers.exports import stream_export, xlsx_max_rows
from admin_site.transfers.exports.framing import frame_chunks_if_relayed
from admin_site.transfers.formats import EXPORT_FORMATS, IMPORT_FORMATS, FileFormatError, check_size
from admin_site.transfers.imports import PREVIEW_ROWS
from admin_site.transfers.records import audited, record_progress
from admin_site.transfers.resources import resource_for
from admin_site.transfers.rowstates import RowStates
from admin_site.transfers.uploads import SharedUploadStorage


class UploadForm(ImportForm):
    """The upload form: a file over the size limit is a form error, and the file remembers its sender."""

    def __init__(self, formats, resources, owner=None, **kwargs):
        super().__init__(formats, resources, **kwargs)
        self.owner = owner

    def clean_import_file(self):
        import_file = self.cleaned_data["import_file"]
        try:
            check_size(import_file.size)
        except FileFormatError as exc:
            raise ValidationError(str(exc)) from None
        import_file.owner = self.owner
        return import_file


class ConfirmForm(ConfirmImportForm):
    """The confirm form's hidden fields, checked: a format or resource index that the page never offered is refused."""

    def __init__(self, *args, formats=0, resources=0, **kwargs):
        super().__init__(*args, **kwargs)
        self.choices = {"format": formats, "resource": resources}

    def _index(self, name, required):
        value = self.cleaned_data.get(name) or ""
        if not value and not required:
            return value
        if not (value.isascii() and value.isdigit() and len(value) < 4 and int(value) < self.choices[name]):
            raise ValidationError(f"Not one of the offered {name}s.")
        return value

    def clean_format(self):
        return self._index("format", required=True)

    def clean_resource(self):
        return self._index("resource", required=False)


class DatabaseImportExportMixin(ImportMixin, ExportActionMixin):
    """Import (preview, then confirm) and export on the panel's database."""

    import_template_name = "admin_site/import.html"
    export_template_name = "admin_site/export.html"
    import_export_change_list_template = "admin/import_export/change_list_import_export.html"
    tmp_storage_class = SharedUploadStorage
    #: Fields of the generated resource (None: every model field).
    resource_fields = None
    #: Bulk writes skip save() and signals: turn off for models whose signals keep data consistent.
    import_use_bulk = True

    def get_urls(self):
        """import-export's URLs, tagged with this ModelAdmin as Django tags its own (``model_admin``).

        Code that asks which model a request is for (the drift banner) then
        finds the import and export pages as it finds the changelist.
        """
        urls = self.get_transfer_urls() + super().get_urls()
        for pattern in urls:
            if not hasattr(pattern.callback, "model_admin"):
                pattern.callback.model_admin = self
        return urls

    def get_transfer_urls(self):
        """A background transfer's progress page, and its cancel, confirm and download (``background``)."""
        info = f"{self.opts.app_label}_{self.opts.model_name}_transfer"

        def view(function, post=False):
            def transfer_view(request, pk):
                return function(self, request, pk)

            return self.admin_site.admin_view(require_POST(transfer_view) if post else transfer_view)

        return [
            path("transfers/<int:pk>/", view(background.progress_view), name=info),
            path("transfers/<int:pk>/cancel/", view(background.cancel_view, post=True), name=f"{info}_cancel"),
            path("transfers/<int:pk>/confirm/", view(background.confirm_view, post=True), name=f"{info}_confirm"),
            path("transfers/<int:pk>/download/", view(background.download_view), name=f"{info}_download"),
        ]

    # -- resources and formats ---------------------------------------------------

    def get_resource_classes(self, request):
        if self.resource_classes or self.resource_class:
            return super().get_resource_classes(request)
        return [resource_for(self.model, fields=self.resource_fields, use_bulk=self.import_use_bulk)]

    def get_resource_kwargs(self, request, *args, **kwargs):
        """Every resource the admin builds reads and writes the panel's alias."""
        return {**super().get_resource_kwargs(request, *args, **kwargs), "using": self.admin_site.alias}

    def get_import_formats(self):
        return IMPORT_FORMATS

    def get_export_formats(self):
        return EXPORT_FORMATS

    # -- permissions -------------------------------------------------------------

    def has_import_permission(self, request):
        """Importing adds and changes rows: it needs both permissions."""
        return self.has_add_permission(request) and self.has_change_permission(request)

    def has_export_permission(self, request):
        """Exporting shows every row: it needs view (or change) permission."""
        return self.has_view_or_change_permission(request)

    # -- import ------------------------------------------------------------------

    def get_import_form_class(self, request):
        return UploadForm

    def get_import_form_kwargs(self, request):
        return {**super().get_import_form_kwargs(request), "owner": request.user.pk}

    def get_confirm_form_class(self, request):
        return ConfirmForm

    def get_confirm_form_kwargs(self, request, import_form=None):
        return {
            **super().get_confirm_form_kwargs(request, import_form),
            "formats": len(self.get_import_formats()),
            "resources": len(self.get_import_resource_classes(request)),
        }

    def get_import_data_kwargs(self, **kwargs):
        """Pass the format's name and "admin" to the audit record; drop what import_data must not see."""
        form = kwargs.get("form")
        kwargs = super().get_import_data_kwargs(**kwargs)
        kwargs.pop("request", None)
        kwargs.pop("form", None)
        if form is not None and "format" in getattr(form, "cleaned_data", {}):
            kwargs["file_format"] = self.get_import_formats()[int(form.cleaned_data["format"])]().get_title()
        return {**kwargs, "via": "admin"}

    def write_to_tmp_storage(self, import_file, input_format):
        """Stream the upload to shared storage, owned by its sender (stock concatenates it in memory)."""
        storage = SharedUploadStorage(owner=import_file.owner)
        storage.save(import_file)
        return storage

    def import_action(self, request, **kwargs):
        """The upload and its preview; an upload the preview refuses is deleted at once.

        A file of more rows than ``CONSOLE_BACKGROUND_IMPORT_ROWS`` is previewed by the worker instead.
        """
        if request.method == "POST" and self.has_import_permission(request):
            started = self.background_import(request)
            if started is not None:
                return started
        try:
            response = super().import_action(request, **kwargs)
        except DatabaseDriverError as exc:
            stored = getattr(request.FILES.get("import_file"), "tmp_storage_name", None)
            if stored:
                SharedUploadStorage(name=stored, owner=request.user.pk).remove()
            messages.error(request, self.database_failed(exc, "checking the file"))
            return HttpResponseRedirect(request.path)
        context = getattr(response, "context_data", None)
        if context is None:
            return response
        stored = getattr(request.FILES.get("import_file"), "tmp_storage_name", None)
        if stored and not context.get("confirm_form"):
            SharedUploadStorage(name=stored, owner=request.user.pk).remove()
        elif stored and context.get("result") is not None:
            # The rows this preview showed as updates: the confirm refuses any changed since.
            context["result"].row_states.save(SharedUploadStorage(name=stored, owner=request.user.pk).path())
        # The columns an import takes (stock lists every field, computed and system ones too, and none
        # after a file error).
        resources = [
            cls(**self.get_import_resource_kwargs(request)) for cls in self.get_import_resource_classes(request)
        ]
        context["fields_list"] = [(resource.get_display_name(), importable_columns(resource)) for resource in resources]
        return response

    def background_import(self, request):
        """Queue the preview of a big upload and answer with its progress page; None for a file the request handles."""
        if not background.can_import_in_background(self.admin_site.alias):
            return None
        form = self.create_import_form(request)
        if not form.is_valid():
            return None  # the stock view shows the form's errors
        import_file = form.cleaned_data["import_file"]
        file_format = self.get_import_formats()[int(form.cleaned_data["format"])]().get_title()
        rows = background.estimate_rows(import_file, file_format)
        if rows <= background.import_threshold():
            return None
        storage = self.write_to_tmp_storage(import_file, file_format)
        return background.start_import(
            self,
            request,
            storage,
            rows=rows,
            file_name=import_file.name,
            file_format=file_format,
            resource=int(form.cleaned_data.get("resource") or 0),
        )

    def add_data_read_fail_error_to_form(self, form, e):
        """Say what is wrong with the file, not just the exception's class name."""
        if isinstance(e, FileFormatError):
            form.add_error("import_file", str(e))
        else:
            super().add_data_read_fail_error_to_form(form, e)

    def get_import_context_data(self, **kwargs):
        return {
            **super().get_import_context_data(**kwargs),
            "preview_rows": PREVIEW_ROWS,
            "background_rows": background.import_threshold()
            if background.can_import_in_background(self.admin_site.alias)
            else None,
        }

    @method_decorator(require_POST)
    def process_import(self, request, **kwargs):
        """Confirm: import the sender's stored upload for real, on whichever process this POST reached."""
        if not self.has_import_permission(request):
            raise PermissionDenied
        confirm_form = self.create_confirm_form(request)
        if not confirm_form.is_valid():
            raise BadRequest("The confirm form was altered: upload the file again.")
        import_url = reverse(f"{self.admin_site.name}:{self.opts.app_label}_{self.opts.model_name}_import")
        input_format = self.get_import_formats()[int(confirm_form.cleaned_data["format"])]()
        storage = SharedUploadStorage(name=confirm_form.cleaned_data["import_file_name"], owner=request.user.pk)
        try:
            rows = input_format.create_dataset(storage.read())
        except FileNotFoundError:
            messages.error(
                request, "This upload is no longer available (it expired or was already imported): upload it again."
            )
            return HttpResponseRedirect(import_url)
        except FileFormatError as exc:
            storage.remove()
            messages.error(request, str(exc))
            return HttpResponseRedirect(import_url)
        row_states = RowStates.load(storage.path())
        if row_states is None:
            storage.remove()
            messages.error(request, "This upload was not previewed here: upload it again to preview it.")
            return HttpResponseRedirect(import_url)
        try:
            result = self.process_dataset(rows, confirm_form, request, row_states=row_states, **kwargs)
        except DatabaseDriverError as exc:
            # The import's transaction did not commit. A broken connection is replaced at the end of
            # the request (CONN_HEALTH_CHECKS), so the retry gets a fresh one.
            storage.remove()
            messages.error(request, self.database_failed(exc, "the import"))
            return HttpResponseRedirect(import_url)
        storage.remove()
        if result.problems:
            # The data changed since the preview; nothing was written.
            form_kwargs = {**self.get_import_form_kwargs(request), "data": None, "files": None}
            form = self.get_import_form_class(request)(
                self.get_import_formats(), self.get_import_resource_classes(request), **form_kwargs
            )
            context = {
                **self.admin_site.each_context(request),
                **self.get_import_context_data(),
                "title": "Import",
                "opts": self.opts,
                "result": result,
                "form": form,
            }
            request.current_app = self.admin_site.name
            return TemplateResponse(request, [self.import_template_name], context, status=409)
        return self.process_result(result, request)

    def database_failed(self, exc, during):
        """The message for a database failure: the database's fault, named, and nothing written."""
        return (
            f"The database '{self.admin_site.alias}' failed during {during} ({type(exc).__name__}); "
            "nothing was imported. This is not a problem in the file: upload it again once the database is back."
        )

    def generate_log_entries(self, result, request):
        """Nothing here: ``run_import`` records the import's history itself (``admin_site.history``), for every path."""

    # -- export ------------------------------------------------------------------

    def get_export_queryset(self, request):
        """The list's rows as its query string filters them; a filter the list would refuse is a 400, not a 500.

        The changelist answers a bad lookup with a redirect to ``?e=1``; the
        export's address only ever carries the list's own filters, so anything
        else was typed or crafted.
        """
        try:
            return super().get_export_queryset(request)
        except IncorrectLookupParameters:
            raise BadRequest(
                "The filters in this address are not ones the list offers: export from the list."
            ) from None

    def get_valid_export_item_pks(self, request):
        """Only the selected pks that this panel's queryset holds (stock: the whole default table).

        A selected key that no row can have (``abc``, past 64 bits) is a 400: it
        reached the look-up unchecked and was a 500.
        """
        connection = connections[self.admin_site.alias]
        try:
            selected = [column_value(self.opts.pk, pk, connection) for pk in request.POST.getlist("export_items")]
        except ValueError:
            raise BadRequest("The selected rows are not rows of this list: select them on the list.") from None
        return self.get_queryset(request).filter(pk__in=selected).values_list("pk", flat=True)

    def response_change(self, request, obj):
        if "_export-item" in request.POST:
            return self.export_admin_action(request, self.get_queryset(request).filter(pk=obj.pk))
        return super().response_change(request, obj)

    def get_export_context_data(self, **kwargs):
        return {**super().get_export_context_data(**kwargs), "xlsx_max_rows": xlsx_max_rows()}

    def is_skip_export_form_enabled(self):
        """Every export goes through the form and ``export_action``: the streamed, audited path."""
        return False

    def is_skip_export_form_from_action_enabled(self):
        return False

    def export_action(self, request):
        """The export form; a valid one streams the file (stock builds the whole file in memory first).

        An export only reads the panel's rows: from a replica when one is healthy (``admin_site.replicas``).
        """
        if not self.has_export_permission(request):
            raise PermissionDenied
        allow_replica_reads(("GET", "HEAD", "POST"))
        formats = self.get_export_formats()
        queryset = self.get_export_queryset(request)
        form = self.get_export_form_class()(
            formats, self.get_export_resource_classes(request), data=request.POST or None
        )
        if request.POST and "export_items" in request.POST:  # posted from the "Export selected" action
            pks = self.get_valid_export_item_pks(request)
            form.fields["export_items"] = MultipleChoiceField(
                widget=MultipleHiddenInput, required=False, choices=[(pk, pk) for pk in pks]
            )
        if form.is_valid():
            file_format = formats[int(form.cleaned_data["format"])]()
            if "export_items" in form.changed_data:
                queryset = queryset.filter(pk__in=form.cleaned_data["export_items"])
            rows = queryset.count()
            if rows > background.export_threshold():
                return self.background_export(request, queryset, file_format, form, rows)
            try:
                return self.stream_file_export(file_format, request, queryset, export_form=form)
            except (ValueError, FieldError) as e:
                messages.error(request, str(e))
        context = self.init_request_context_data(request, form)
        request.current_app = self.admin_site.name
        return TemplateResponse(request, [self.export_template_name], context=context)

    def background_export(self, request, queryset, file_format, form, rows):
        """Queue an export of more rows than ``CONSOLE_BACKGROUND_EXPORT_ROWS``; its page offers the file when done."""
        return background.start_export(
            self,
            request,
            queryset,
            rows=rows,
            file_name=self.get_export_filename(request, queryset, file_format),
            file_format=file_format.get_title(),
            fields=self.get_export_resource_fields_from_form(form),
            resource=self.get_resource_index(form),
        )

    def stream_file_export(self, file_format, request, queryset, export_form=None):
        """Stream the file as it is produced, so that a stream cut short looks cut short; record the export."""
        if not self.has_export_permission(request):
            raise PermissionDenied
        resource_class = self.choose_export_resource_class(export_form, request) if export_form else None
        resource_class = resource_class or self.get_export_resource_classes(request)[0]
        resource = resource_class(**self.get_export_resource_kwargs(request))
        fields = self.get_export_resource_fields_from_form(export_form) if export_form else None
        name = file_format.get_title()
        if not self.opts.managed:
            # A table someone else owns may have changed under its model: read its first row here, in the
            # view, so that a gone table or column is the drift page (admin_site.drift), not a download
            # that ends cleanly after its header row.
            list(queryset.using(read_database(self.admin_site.alias))[:1])
        export = stream_export(resource, queryset, name, selected_fields=fields)
        if export.notice:
            messages.warning(request, export.notice)
        filename = self.get_export_filename(request, queryset, file_format)
        response = StreamingHttpResponse(
            self.audited_chunks(request, export, filename, name), content_type=export.content_type
        )
        response["Content-Disposition"] = content_disposition_header(True, filename)
        if export.notice:
            response["X-Console-Notice"] = export.notice
        return frame_chunks_if_relayed(response, request)

    def audited_chunks(self, request, export, filename, file_format):
        """The export's chunks, its record "running" from the first: it ends with the rows reached, however it ends.

        A database error propagates out of the response, so the server cuts the download off (see ``framing``).
        """
        with audited(
            "export",
            database=self.admin_site.alias,
            model=self.model,
            user=request.user,
            via="admin",
            file_name=filename,
            file_format=file_format,
        ) as record:
            try:
                for chunk in export.chunks:
                    yield chunk
                    record_progress(record, export.rows)
            finally:
                record.rows_total = export.rows
                export.close()
            record.message = export.notice or ""


def importable_columns(resource):
    """The columns ``resource`` imports: a console resource's own list, else every import field (stock)."""
    if hasattr(resource, "importable_columns"):
        return resource.importable_columns()
    return [field.column_name for field in resource.get_user_visible_fields()]
