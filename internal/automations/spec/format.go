package spec

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Format writes f as an automations file in YAML that Parse reads back as
// f: fields in the order of the types above, references sorted, multi-line
// commands as literal blocks. An empty file is "".
func Format(f *File) ([]byte, error) {
	if f == nil || len(f.Services)+len(f.Tasks) == 0 {
		return nil, nil
	}
	// The JSON names are the file's; JSON keeps the fields' order, and as
	// YAML it is a node tree to restyle.
	j, err := json.Marshal(f)
	if err != nil {
		return nil, fmt.Errorf("format automations file: %w", err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(j, &doc); err != nil {
		return nil, fmt.Errorf("format automations file: %w", err)
	}
	restyle(&doc)
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(&doc); err != nil {
		return nil, fmt.Errorf("format automations file: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("format automations file: %w", err)
	}
	return buf.Bytes(), nil
}

// restyle turns JSON's flow style into YAML's block style: strings are
// plain where YAML allows it, literal blocks when they span lines.
func restyle(n *yaml.Node) {
	n.Style = 0
	if n.Kind == yaml.ScalarNode && n.Tag == "!!str" && strings.Contains(n.Value, "\n") && !strings.ContainsAny(n.Value, "\r\t") {
		n.Style = yaml.LiteralStyle
	}
	for _, c := range n.Content {
		restyle(c)
	}
}
