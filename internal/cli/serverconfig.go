package cli

import (
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"go.yaml.in/yaml/v3"
)

// This file is the server's --config file (runyard server); config.go is
// the CLI's own contexts.

// applyConfigFile sets the flags of cmd that the command line left unset
// from a YAML file whose keys are the long flag names (`oidc-issuer:
// https://...`). Flags given on the command line win over the file. A list
// value is joined with commas, as the flag takes it. An unknown key, a key
// given twice or a value of the wrong shape is an error naming the key and
// its line; nothing is applied then.
func applyConfigFile(cmd *cobra.Command, path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return usagef("--config: %v", err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return usagef("--config %s: not YAML: %v", path, err)
	}
	if len(doc.Content) == 0 {
		return nil // an empty file sets nothing
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return usagef("--config %s: want a mapping of flag names to values (line %d)", path, root.Line)
	}
	type setting struct {
		flag  *pflag.Flag
		value string
	}
	var settings []setting
	seen := map[string]bool{}
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		key := k.Value
		f := cmd.Flags().Lookup(key)
		if f == nil || key == "config" || key == "help" {
			return usagef("--config %s line %d: unknown key %q (keys are the long flag names of `runyard %s`)", path, k.Line, key, cmd.Name())
		}
		if seen[key] {
			return usagef("--config %s line %d: key %q given twice", path, k.Line, key)
		}
		seen[key] = true
		value, err := configValue(v)
		if err != nil {
			return usagef("--config %s line %d: key %q: %v", path, v.Line, key, err)
		}
		settings = append(settings, setting{f, value})
	}
	for _, s := range settings {
		if s.flag.Changed {
			continue
		}
		if err := s.flag.Value.Set(s.value); err != nil {
			// The value itself is not repeated: it may be a secret.
			return usagef("--config %s: key %q: %v", path, s.flag.Name, maskedError(s.flag, err))
		}
		s.flag.Changed = true
	}
	return nil
}

// configValue is a scalar as written, or a list of scalars joined by commas.
func configValue(v *yaml.Node) (string, error) {
	switch v.Kind {
	case yaml.ScalarNode:
		return v.Value, nil
	case yaml.SequenceNode:
		items := make([]string, 0, len(v.Content))
		for _, it := range v.Content {
			if it.Kind != yaml.ScalarNode {
				return "", fmt.Errorf("a list of plain values is expected")
			}
			items = append(items, it.Value)
		}
		return strings.Join(items, ","), nil
	}
	return "", fmt.Errorf("a value or a list of values is expected")
}

// secretFlags never show their value, in errors or anywhere else.
var secretFlags = map[string]bool{"oidc-client-secret": true}

func maskedError(f *pflag.Flag, err error) error {
	if secretFlags[f.Name] {
		return fmt.Errorf("invalid value")
	}
	return err
}
