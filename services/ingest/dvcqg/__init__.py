"""The portal-compatible intake: `/dvcqg/api/...` speaks the portal adapter protocol."""
