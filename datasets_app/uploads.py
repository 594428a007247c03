"""Uploads stream to a private work folder in chunks (never whole into memory, never into the
system temp folder) and stop as soon as they pass the size limit."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from django.conf import settings
from django.core.files.uploadedfile import TemporaryUploadedFile
from django.core.files.uploadhandler import FileUploadHandler, StopUpload


class UploadTooLarge(Exception):
    pass


def upload_dir() -> Path:
    folder = Path(settings.DATA_DIR) / "work" / "uploads"
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    return folder


class PrivateTemporaryUploadedFile(TemporaryUploadedFile):
    def __init__(self, name, content_type, size, charset, content_type_extra=None):
        # Same as Django's, but in our 0700 upload folder rather than the system temp folder.
        file = tempfile.NamedTemporaryFile(suffix=".upload", dir=upload_dir())  # noqa: SIM115
        os.chmod(file.name, 0o600)
        super(TemporaryUploadedFile, self).__init__(
            file, name, content_type, size, charset, content_type_extra
        )


class LimitedUploadHandler(FileUploadHandler):
    """Marks the request when a file passes HEARTH_MAX_UPLOAD_BYTES and stops reading it."""

    def handle_raw_input(self, input_data, META, content_length, boundary, encoding=None):
        self.limit = settings.HEARTH_MAX_UPLOAD_BYTES
        if content_length and content_length > self.limit + 64 * 1024:  # + multipart overhead
            self.request.upload_too_large = True
            raise StopUpload(connection_reset=True)

    def new_file(self, *args, **kwargs):
        super().new_file(*args, **kwargs)
        self.file = PrivateTemporaryUploadedFile(
            self.file_name, self.content_type, 0, self.charset, self.content_type_extra
        )
        self.received = 0

    def receive_data_chunk(self, raw_data, start):
        self.received += len(raw_data)
        if self.received > self.limit:
            self.file.close()
            self.request.upload_too_large = True
            raise StopUpload(connection_reset=True)
        self.file.write(raw_data)

    def file_complete(self, file_size):
        self.file.seek(0)
        self.file.size = file_size
        return self.file
