"""Images: references as Docker names them, a content-addressed store of OCI blobs, and layers
extracted once each, safely (issue 4). The runc executor mounts the layers with overlayfs."""
