// Package protocheck holds tests that hold the gitpod.v1 protos to the
// vendor's API documents in testdata (copies of ../shared/seeds): every field
// name, type shape, enum value and example body the documents show must be
// accepted by the generated messages. It has no code of its own.
package protocheck
