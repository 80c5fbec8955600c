"""Blob stores: where the bytes of each instance live. The filesystem store is the default."""

from pacsnode.storage.base import BlobStore, StorageError
from pacsnode.storage.filesystem import FileSystemStore

__all__ = ["BlobStore", "FileSystemStore", "StorageError"]
