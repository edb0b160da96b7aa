// Package k8sschema validates Kubernetes objects against the OpenAPI schemas
// of a Kubernetes release, for the tests of the manifests runyard generates
// (internal/manifest) and ships (deploy/). No cluster runs here, so a schema
// is the closest check to `kubectl apply --dry-run=server`: unknown fields,
// wrong types and missing required fields fail, as the API server's
// validation would refuse them.
//
// k8s-1.36.json holds the definitions of Kubernetes release-1.36's OpenAPI
// document (as kubernetes-client/python ships it) that the kinds runyard
// uses reach, made strict like kubeconform's "-strict" schemas: see its
// "source" field.
package k8sschema

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v6"
	yamlv3 "go.yaml.in/yaml/v3"
	"sigs.k8s.io/yaml"
)

//go:embed k8s-1.36.json
var schemaJSON []byte

// Release is the Kubernetes release whose schemas are embedded.
const Release = "1.36"

var (
	once     sync.Once
	byGVK    map[string]*jsonschema.Schema
	loadErrs error
)

func load() {
	var doc struct {
		Definitions map[string]struct {
			GVK []struct{ Group, Version, Kind string } `json:"x-kubernetes-group-version-kind"`
		} `json:"definitions"`
	}
	if err := json.Unmarshal(schemaJSON, &doc); err != nil {
		loadErrs = err
		return
	}
	raw, err := jsonschema.UnmarshalJSON(bytes.NewReader(schemaJSON))
	if err != nil {
		loadErrs = err
		return
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft4)
	const url = "k8s.json"
	if err := c.AddResource(url, raw); err != nil {
		loadErrs = err
		return
	}
	byGVK = map[string]*jsonschema.Schema{}
	for name, def := range doc.Definitions {
		for _, g := range def.GVK {
			sch, err := c.Compile(url + "#/definitions/" + name)
			if err != nil {
				loadErrs = errors.Join(loadErrs, fmt.Errorf("compile %s: %w", name, err))
				continue
			}
			byGVK[gvk(g.Group, g.Version, g.Kind)] = sch
		}
	}
}

func gvk(group, version, kind string) string {
	if group == "" {
		return version + "/" + kind
	}
	return group + "/" + version + "/" + kind
}

// Validate validates one object, given as YAML or JSON.
func Validate(doc []byte) error {
	once.Do(load)
	if loadErrs != nil {
		return fmt.Errorf("k8sschema: %w", loadErrs)
	}
	j, err := yaml.YAMLToJSON(doc)
	if err != nil {
		return fmt.Errorf("not YAML: %w", err)
	}
	var head struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
	}
	if err := json.Unmarshal(j, &head); err != nil {
		return fmt.Errorf("not an object: %w", err)
	}
	sch := byGVK[head.APIVersion+"/"+head.Kind]
	if sch == nil {
		return fmt.Errorf("apiVersion %q kind %q: no such kind in Kubernetes %s (or not one runyard's tests know)", head.APIVersion, head.Kind, Release)
	}
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(j))
	if err != nil {
		return err
	}
	if err := sch.Validate(v); err != nil {
		return fmt.Errorf("%s: %w", head.Kind, err)
	}
	return nil
}

// ValidateStream validates every document of a YAML stream ("---"
// separated) and returns how many there were.
func ValidateStream(stream []byte) (int, error) {
	dec := yamlv3.NewDecoder(bytes.NewReader(stream))
	n := 0
	var errs []error
	for {
		var node yamlv3.Node
		err := dec.Decode(&node)
		if err == io.EOF {
			break
		}
		if err != nil {
			return n, fmt.Errorf("document %d: %w", n+1, err)
		}
		if len(node.Content) == 0 {
			continue
		}
		b, err := yamlv3.Marshal(&node)
		if err != nil {
			return n, err
		}
		if t := strings.TrimSpace(string(b)); t == "" || t == "null" {
			continue
		}
		n++
		if err := Validate(b); err != nil {
			errs = append(errs, fmt.Errorf("document %d: %w", n, err))
		}
	}
	return n, errors.Join(errs...)
}
