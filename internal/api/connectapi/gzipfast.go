package connectapi

import (
	"compress/gzip"
	"io"

	"connectrpc.com/connect"
)

// fastGzip answers gzip at its fastest level instead of the default one:
// compressing a page of 100 runners at the default level was a fifth of a
// ListRunners' CPU, for an answer a few per cent smaller. Only the
// RunnerService uses it (its pages are the large answers issue 17 measures);
// the runner protocol's streams keep connect-go's default.
func fastGzip() connect.HandlerOption {
	return connect.WithCompression("gzip",
		func() connect.Decompressor { return &gzip.Reader{} },
		func() connect.Compressor {
			w, _ := gzip.NewWriterLevel(io.Discard, gzip.BestSpeed)
			return w
		})
}
