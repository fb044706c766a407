"""Policy packs shipped with gen4sdk (installed as the data package ``gen4sdk.policies``)."""
