package oidclogin

// SetLimit gives h the per-address sign-in budget that Deps.Limit gives a
// server's handler.
func SetLimit(h *Handler, limit func(ip string) error) { h.limit = limit }
