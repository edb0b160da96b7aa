package release

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
)

// Package writes a signed release directory into outDir from binaries
// already built (by platform), as Build does after its go builds, without
// the install script: `runyard releases publish` without a directory
// publishes its own binary this way, and tests package builds of their own.
func Package(outDir string, m Manifest, binaries map[Target]string, key ed25519.PrivateKey) (*Manifest, error) {
	if len(key) != ed25519.PrivateKeySize {
		return nil, errors.New("release: no signing key")
	}
	if m.Version == "" {
		return nil, errors.New("release: no version")
	}
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return nil, fmt.Errorf("release: %w", err)
	}
	targets := make([]Target, 0, len(binaries))
	for t := range binaries {
		targets = append(targets, t)
	}
	sort.Slice(targets, func(i, j int) bool { return targets[i].String() < targets[j].String() })
	var sums bytes.Buffer
	m.Artifacts = nil
	for _, t := range targets {
		name := ArchiveName(m.Version, t)
		sum, err := writeArchive(filepath.Join(outDir, name), binaries[t])
		if err != nil {
			return nil, fmt.Errorf("release: archive %s: %w", t, err)
		}
		m.Artifacts = append(m.Artifacts, Artifact{OS: t.OS, Arch: t.Arch, File: name, SHA256: sum})
		fmt.Fprintf(&sums, "%s  %s\n", sum, name)
	}
	if err := writeSigned(outDir, sums.Bytes(), key); err != nil {
		return nil, err
	}
	mj, _ := json.MarshalIndent(m, "", "  ")
	if err := os.WriteFile(filepath.Join(outDir, ManifestFile), append(mj, '\n'), 0o644); err != nil {
		return nil, fmt.Errorf("release: %w", err)
	}
	return &m, nil
}
