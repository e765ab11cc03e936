"""Who is calling the JSON API, and what they may do: :mod:`app.auth.principal`, under the API's names.

Two kinds of credential reach ``/api/v1``: the browser's session cookie (CSRF-protected like any form), and
API keys sent as ``Authorization: Bearer marid_...``. The authentication step (``app.apikeys``) stores a
principal in ``request.state.api_principal`` for Bearer requests; session requests get one built from the
signed-in user.
"""

from __future__ import annotations

from app.auth.principal import SCOPE_ORDER, ApiPrincipal, Principal, Scope, implied

__all__ = ["SCOPE_ORDER", "ApiPrincipal", "Principal", "Scope", "implied"]
