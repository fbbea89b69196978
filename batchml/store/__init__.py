"""The storage root: the layout of every path, local and object storage, manifests, atomic commits, what readers see."""
