// Package sdktest runs the vendor's TypeScript SDK (@gitpod/sdk, pinned in
// sdktest/ts/package.json) against a live control plane and runner: the proof
// that a client written for the vendor's API works unchanged against
// runyard. It has only tests; they need node and npm (CI installs them).
package sdktest
