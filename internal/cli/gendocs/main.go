// Command gendocs writes the CLI reference, one markdown file per command,
// from the command tree: go run ./internal/cli/gendocs [-check] [DIR].
// With -check it writes nothing and fails when DIR is not current.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/runyard/runyard/internal/cli"
)

func main() {
	check := flag.Bool("check", false, "fail when the reference is not current instead of writing it")
	flag.Parse()
	dir := "docs/cli"
	if flag.NArg() > 0 {
		dir = flag.Arg(0)
	}
	files := map[string][]byte{}
	root := cli.NewRootCommand()
	walk(root, func(c *cobra.Command) { files[fileName(c)] = page(c) })
	if *check {
		if stale := compare(dir, files); len(stale) > 0 {
			fmt.Fprintf(os.Stderr, "gendocs: %s is not current (%s): run go run ./internal/cli/gendocs\n", dir, strings.Join(stale, ", "))
			os.Exit(1)
		}
		return
	}
	if err := write(dir, files); err != nil {
		fmt.Fprintln(os.Stderr, "gendocs:", err)
		os.Exit(1)
	}
}

func walk(c *cobra.Command, fn func(*cobra.Command)) {
	if c.Hidden || strings.HasPrefix(c.Name(), "__") {
		return
	}
	fn(c)
	for _, sub := range c.Commands() {
		walk(sub, fn)
	}
}

// fileName is runyard_runners_list.md for `runyard runners list`.
func fileName(c *cobra.Command) string {
	return strings.ReplaceAll(c.CommandPath(), " ", "_") + ".md"
}

// page renders one command: what it does, its usage, examples, flags and
// the commands around it.
func page(c *cobra.Command) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "# %s\n\n%s\n\n", c.CommandPath(), c.Short)
	if c.Long != "" {
		fmt.Fprintf(&b, "%s\n\n", strings.TrimSpace(c.Long))
	}
	if c.Runnable() {
		fmt.Fprintf(&b, "```\n%s\n```\n\n", c.UseLine())
	}
	if c.Example != "" {
		fmt.Fprintf(&b, "## Examples\n\n```\n%s\n```\n\n", strings.TrimRight(c.Example, "\n"))
	}
	if len(c.Aliases) > 0 {
		fmt.Fprintf(&b, "Aliases: %s\n\n", strings.Join(c.Aliases, ", "))
	}
	if fs := c.NonInheritedFlags(); fs.HasAvailableFlags() {
		fmt.Fprintf(&b, "## Flags\n\n```\n%s```\n\n", fs.FlagUsages())
	}
	if fs := c.InheritedFlags(); fs.HasAvailableFlags() {
		fmt.Fprintf(&b, "## Global flags\n\n```\n%s```\n\n", fs.FlagUsages())
	}
	var subs []*cobra.Command
	for _, s := range c.Commands() {
		if !s.Hidden && !strings.HasPrefix(s.Name(), "__") {
			subs = append(subs, s)
		}
	}
	if len(subs) > 0 {
		b.WriteString("## Commands\n\n")
		for _, s := range subs {
			fmt.Fprintf(&b, "- [%s](%s): %s\n", s.CommandPath(), fileName(s), s.Short)
		}
		b.WriteString("\n")
	}
	if c.HasParent() {
		fmt.Fprintf(&b, "See also: [%s](%s)\n", c.Parent().CommandPath(), fileName(c.Parent()))
	}
	return bytes.TrimRight(b.Bytes(), "\n")
}

// compare returns the files of dir that differ from files, are missing or
// are left over.
func compare(dir string, files map[string][]byte) []string {
	var stale []string
	for name, want := range files {
		got, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil || !bytes.Equal(got, append(want, '\n')) {
			stale = append(stale, name)
		}
	}
	existing, _ := filepath.Glob(filepath.Join(dir, "runyard*.md"))
	for _, p := range existing {
		if _, ok := files[filepath.Base(p)]; !ok {
			stale = append(stale, filepath.Base(p)+" (no such command)")
		}
	}
	sort.Strings(stale)
	return stale
}

// write replaces dir's reference with files.
func write(dir string, files map[string][]byte) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	existing, _ := filepath.Glob(filepath.Join(dir, "runyard*.md"))
	for _, p := range existing {
		if _, ok := files[filepath.Base(p)]; !ok {
			if err := os.Remove(p); err != nil {
				return err
			}
		}
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), append(body, '\n'), 0o644); err != nil {
			return err
		}
	}
	return nil
}
