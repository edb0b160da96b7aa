package connectapi

import "sync/atomic"

var fastServedCount atomic.Int64

func init() { fastServed = func() { fastServedCount.Add(1) } }

// FastReadsServed counts the answers of the runner reads' fast path.
func FastReadsServed() int64 { return fastServedCount.Load() }

// UnimplementedHandler lets the external tests mount a stub for a method of
// their own (streaming kinds no declared API method has yet).
var UnimplementedHandler = unimplementedHandler
