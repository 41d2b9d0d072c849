package gen

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// Do runs flowstonegen with the command-line arguments args (without the
// program name) and returns the exit status: 0 on success, 1 on generator
// errors or a stale file under -check, 2 on bad usage.
//
//	flowstonegen [-check] [-C dir] [packages]
func Do(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("flowstonegen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	check := fs.Bool("check", false, "verify that the generated files are up to date, writing nothing")
	dir := fs.String("C", ".", "run in `dir`: patterns and printed paths are relative to it")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: flowstonegen [-check] [-C dir] [packages]")
		fmt.Fprintln(stderr, "Generates flowstone_gen.go in each package holding //flowstone:asset functions (default: .).")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return 0
		}
		return 2
	}
	wd, err := filepath.Abs(*dir)
	if err == nil {
		_, err = os.Stat(wd)
	}
	if err != nil {
		fmt.Fprintf(stderr, "flowstonegen: %v\n", err)
		return 2
	}
	files, errs := Generate(context.Background(), wd, fs.Args())
	if len(errs) > 0 {
		for _, err := range errs {
			fmt.Fprintln(stderr, FormatError(err, wd))
		}
		return 1
	}
	if *check {
		stale := Stale(files)
		for _, f := range stale {
			fmt.Fprintf(stderr, "flowstonegen: %s is stale; run go generate\n", relPath(wd, f.Path))
		}
		if len(stale) > 0 {
			return 1
		}
		return 0
	}
	if err := Commit(files); err != nil {
		fmt.Fprintf(stderr, "flowstonegen: %v\n", err)
		return 1
	}
	return 0
}
