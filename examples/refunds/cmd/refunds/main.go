// Command refunds runs the refunds example pipeline with FlowStone's
// command line, including the gate commands: list the batches waiting for
// approval, approve or reject one, print a signed approval link, or serve
// those links.
//
//	export FLOWSTONE_SECRET=$(openssl rand -hex 32)   # the same in every process
//	go run ./examples/refunds/cmd/refunds materialize --detach --partition 2024-03-08
//	go run ./examples/refunds/cmd/refunds worker &
//	go run ./examples/refunds/cmd/refunds gates
//	go run ./examples/refunds/cmd/refunds approve RUN_ID refund --by ana --reason "receipts checked"
//
// Or decide in a browser, behind the reverse proxy that serves
// https://ops.example.com/ over TLS (docs/ui.md, "Behind a reverse proxy",
// has its nginx configuration): serve-gates answers the signed links and
// checks that decisions come from the address users open, --public-url,
// whatever Host the proxy passes on.
//
//	go run ./examples/refunds/cmd/refunds serve-gates --addr 127.0.0.1:8080 --public-url https://ops.example.com/ &
//	go run ./examples/refunds/cmd/refunds gate-link RUN_ID refund --base-url https://ops.example.com/gate
//
// The pipeline has a gate, so every command needs the secret that signs
// approval links: FLOWSTONE_SECRET or --secret. The database is
// ./flowstone.db unless --database or FLOWSTONE_DATABASE names another.
package main

import (
	"context"
	"os"

	"github.com/flowstone-go/flowstone/examples/refunds"
	"github.com/flowstone-go/flowstone/runtime"
	"github.com/flowstone-go/flowstone/runtime/cli"
)

func main() {
	os.Exit(cli.Main(context.Background(), cli.App{
		Name:  "refunds",
		Short: "The refunds example pipeline: triage, review, approve and pay a day of refunds",
		Bind: func(ctx context.Context) ([]runtime.Binding, error) {
			return []runtime.Binding{
				runtime.Bind(refunds.Pipeline(), refunds.Resources{Bank: refunds.NewBank()}),
			}, nil
		},
	}, os.Args[1:], os.Stdout, os.Stderr))
}
