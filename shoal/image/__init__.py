"""Images: references as Docker names them, a content-addressed store of OCI blobs, and layers
extracted once each, safely (issue 4). The runc executor mounts the layers with overlayfs.

``service.ImageService`` is the facade the daemon and the API use; behind it, ``catalog`` (names
and dangling images), ``pull`` (registries), ``archive`` (``docker save``/``load``), ``rootfs``
(``docker import``), ``api_json`` (the Docker API's JSON), ``delete`` (``rmi``) and ``unpack``
(images made ready to run)."""
