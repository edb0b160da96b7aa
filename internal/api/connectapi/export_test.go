package connectapi

// UnimplementedHandler lets the external tests mount a stub for a method of
// their own (streaming kinds no declared API method has yet).
var UnimplementedHandler = unimplementedHandler
