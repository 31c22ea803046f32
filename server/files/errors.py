"""The errors of files: uploads and their ownership."""

from __future__ import annotations

from server.platform.errors import NotFound, PayloadTooLarge, UnsupportedMediaType, ValidationFailed


class FileNotFound(NotFound):
    code = "file_not_found"
    message = "文件不存在"


class EmptyFile(ValidationFailed):
    code = "empty_file"
    message = "文件内容为空"


class FileTooLarge(PayloadTooLarge):
    code = "file_too_large"
    message = "文件过大"


class UnsupportedFileType(UnsupportedMediaType):
    code = "unsupported_file_type"
    message = "仅支持 PDF、JPG、PNG 格式的文件"


class FileNotOwned(ValidationFailed):
    code = "file_not_owned"
    message = "文件不存在或不属于你"


class MultipartRequired(UnsupportedMediaType):
    code = "multipart_required"
    message = "请以 multipart/form-data 方式上传文件"


class FileMissing(ValidationFailed):
    code = "file_missing"
    message = "请选择要上传的文件"


class TooManyFiles(ValidationFailed):
    code = "too_many_files"
    message = "一次只能上传一个文件"
