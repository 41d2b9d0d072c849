// Command clidoc writes the reference section of docs/cli.md from the
// command line's command tree (cli.Markdown), bound to the orders example
// as the rest of that page is, so the page cannot drift from the flags and
// commands. go generate ./runtime/cli runs it; its test fails when the page
// is stale.
//
//	go run ./runtime/cli/internal/clidoc docs/cli.md
package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/flowstone-go/flowstone/examples/orders"
	"github.com/flowstone-go/flowstone/runtime"
	"github.com/flowstone-go/flowstone/runtime/cli"
)

// The generated section lies between these lines.
const (
	begin = "<!-- Reference: generated from the command tree by go generate ./runtime/cli; edit runtime/cli, not this section. -->"
	end   = "<!-- End of the generated reference. -->"
)

// app is the orders example's command line, as examples/orders/cmd/orders
// builds it.
func app() cli.App {
	return cli.App{
		Name:  "orders",
		Short: "The orders example pipeline: a day of orders, cleaned, summed and reported",
		Bind: func(ctx context.Context) ([]runtime.Binding, error) {
			return []runtime.Binding{runtime.Bind(orders.Pipeline(), orders.Resources{Rates: orders.NewFXClient()})}, nil
		},
	}
}

// render returns page with its reference section replaced by the current
// one.
func render(ctx context.Context, page string) (string, error) {
	before, rest, ok := strings.Cut(page, begin+"\n")
	if !ok {
		return "", errors.New("no line " + begin)
	}
	_, after, ok := strings.Cut(rest, end)
	if !ok {
		return "", errors.New("no line " + end)
	}
	var ref bytes.Buffer
	if err := cli.Markdown(ctx, app(), &ref); err != nil {
		return "", err
	}
	return before + begin + "\n\n" + ref.String() + "\n" + end + after, nil
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: clidoc PATH/TO/cli.md")
		os.Exit(2)
	}
	path := os.Args[1]
	page, err := os.ReadFile(path)
	if err == nil {
		var out string
		if out, err = render(context.Background(), string(page)); err == nil && out != string(page) {
			err = os.WriteFile(path, []byte(out), 0o644)
		}
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "clidoc: %s: %v\n", path, err)
		os.Exit(1)
	}
}
