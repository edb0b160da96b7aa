// Command runyard-release builds signed release archives of runyard (see
// internal/release and scripts/release.sh).
//
//	runyard-release keygen --out DIR
//	runyard-release build --version v1.2.3 --out dist [--key FILE] [--targets linux/amd64,...]
//	runyard-release verify --public-key FILE DIR
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/runyard/runyard/internal/release"
)

const usage = `usage:
  runyard-release keygen --out DIR         write release-signing-key.pem and release-public-key.pem
  runyard-release build --version V --out DIR [--commit C] [--date D] [--key FILE] [--targets OS/ARCH,...] [--source DIR]
                                           the key is --key, else $RUNYARD_RELEASE_KEY (PEM text) or $RUNYARD_RELEASE_KEY_FILE
  runyard-release verify --public-key FILE DIR
`

func main() {
	// A stopped release stops its go build too (exec.CommandContext).
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "runyard-release:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return errors.New(usage)
	}
	fs := flag.NewFlagSet(args[0], flag.ContinueOnError)
	switch args[0] {
	case "keygen":
		out := fs.String("out", ".", "directory for the key files")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		key, err := release.GenerateKey()
		if err != nil {
			return err
		}
		priv, err := release.MarshalPrivateKey(key)
		if err != nil {
			return err
		}
		pub, err := release.MarshalPublicKey(key.Public().(release.PublicKey))
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(*out, "release-signing-key.pem"), priv, 0o600); err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(*out, release.PublicKeyFile), pub, 0o644)
	case "build":
		version := fs.String("version", "", "the release version, e.g. v1.2.3")
		commit := fs.String("commit", "unknown", "the git commit")
		date := fs.String("date", time.Now().UTC().Format(time.RFC3339), "the build date")
		out := fs.String("out", "dist", "the output directory (must be empty)")
		keyFile := fs.String("key", "", "the PKCS #8 PEM ed25519 signing key")
		targets := fs.String("targets", "linux/amd64,linux/arm64,darwin/amd64,darwin/arm64", "the platforms")
		src := fs.String("source", ".", "the module to build")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		key, err := loadKey(*keyFile)
		if err != nil {
			return err
		}
		ts, err := release.ParseTargets(*targets)
		if err != nil {
			return err
		}
		m, err := release.Build(ctx, release.Options{Version: *version, Commit: *commit, Date: *date, Targets: ts,
			SourceDir: *src, OutDir: *out, Key: key, Log: os.Stderr})
		if err != nil {
			return err
		}
		for _, a := range m.Artifacts {
			fmt.Printf("%s  %s\n", a.SHA256, filepath.Join(*out, a.File))
		}
		return nil
	case "verify":
		pubFile := fs.String("public-key", "", "the release public key (PEM)")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		if fs.NArg() != 1 || *pubFile == "" {
			return errors.New(usage)
		}
		b, err := os.ReadFile(*pubFile)
		if err != nil {
			return err
		}
		pub, err := release.ParsePublicKey(b)
		if err != nil {
			return err
		}
		if err := release.VerifyDir(fs.Arg(0), pub); err != nil {
			return err
		}
		fmt.Println("verified", fs.Arg(0))
		return nil
	}
	return errors.New(usage)
}

// loadKey reads the signing key from --key, $RUNYARD_RELEASE_KEY or
// $RUNYARD_RELEASE_KEY_FILE; the key itself is never printed.
func loadKey(file string) (release.PrivateKey, error) {
	var b []byte
	var err error
	switch {
	case file != "":
		b, err = os.ReadFile(file)
	case os.Getenv("RUNYARD_RELEASE_KEY") != "":
		b = []byte(os.Getenv("RUNYARD_RELEASE_KEY"))
	case os.Getenv("RUNYARD_RELEASE_KEY_FILE") != "":
		b, err = os.ReadFile(os.Getenv("RUNYARD_RELEASE_KEY_FILE"))
	default:
		return nil, errors.New("no signing key: pass --key FILE or set RUNYARD_RELEASE_KEY or RUNYARD_RELEASE_KEY_FILE (make one with `runyard-release keygen`)")
	}
	if err != nil {
		return nil, fmt.Errorf("signing key: %w", err)
	}
	return release.ParsePrivateKey(b)
}
