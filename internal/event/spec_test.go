package event

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"testing"
)

// TestSpecCopyCurrent keeps the repository's copy of the event spec
// (docs/events.md, so that links work inside a clone) identical to the
// contract it copies, the spec kept beside the repository in
// shared/spec/events.md. Outside a checkout that has it, it skips.
func TestSpecCopyCurrent(t *testing.T) {
	contract, err := os.ReadFile("../../../shared/spec/events.md")
	if errors.Is(err, fs.ErrNotExist) {
		t.Skip("../shared/spec/events.md is not beside this checkout; nothing to compare the copy with")
	}
	if err != nil {
		t.Fatal(err)
	}
	copied, err := os.ReadFile("../../docs/events.md")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(contract, copied) {
		t.Fatal("docs/events.md differs from ../shared/spec/events.md: copy the contract again (cp ../shared/spec/events.md docs/events.md)")
	}
}
