package cli

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/flowstone-go/flowstone/runtime/web"
	"github.com/spf13/cobra"
)

// Environment variables serve reads when the matching flag is not given.
const (
	// EnvWebUsers lists the users who may approve, reject and cancel on the
	// page: "name:password", comma-separated.
	EnvWebUsers = "FLOWSTONE_WEB_USERS"
	// EnvWebToken is the bearer token API clients write with.
	EnvWebToken = "FLOWSTONE_WEB_TOKEN"
)

const defaultServeAddr = "127.0.0.1:8090"

func (s *session) serveCommand() *cobra.Command {
	var addr, token string
	var users []string
	var workers bool
	c := &cobra.Command{
		Use:   "serve",
		Short: "Serve the web page: the asset graph, runs, gates and more",
		Long: `Serve answers the web page on --addr (127.0.0.1 unless told otherwise)
until SIGINT or SIGTERM: the asset graph of every bound pipeline, each
asset's partitions, materializations and value, runs with a live timeline,
gates waiting for a decision, backfills, schedules and sensors; and the
engine's metrics for Prometheus at /metrics.
Anyone who reaches the address can read; approving, rejecting and
cancelling need a user (--user NAME:PASSWORD, or FLOWSTONE_WEB_USERS) or,
for API clients, the bearer --token (or FLOWSTONE_WEB_TOKEN). It works no
jobs unless --workers is given.`,
		Args: cobra.NoArgs,
		RunE: run(func(c *cobra.Command, _ []string) error {
			ctx := c.Context()
			if !c.Flags().Changed("user") && os.Getenv(EnvWebUsers) != "" {
				users = strings.Split(os.Getenv(EnvWebUsers), ",")
			}
			if !c.Flags().Changed("token") {
				token = os.Getenv(EnvWebToken)
			}
			opts := web.Options{Users: map[string]string{}, Token: token}
			for _, u := range users {
				name, pass, ok := strings.Cut(strings.TrimSpace(u), ":")
				if !ok || name == "" || pass == "" {
					return usageErr("--user %q: want NAME:PASSWORD", strings.SplitN(u, ":", 2)[0]+":...")
				}
				opts.Users[name] = pass
			}
			metrics := s.serveMetrics()
			eng, _, err := s.openAll(ctx, workers)
			if err != nil {
				return err
			}
			defer closeEngine(ctx, eng, closeTimeout)
			opts.Logger = slog.New(slog.NewTextHandler(s.stderr, &slog.HandlerOptions{Level: s.level}))
			if opts.River, err = riverView(ctx, eng, opts.Logger, s.stderr); err != nil {
				return err
			}
			h, err := web.New(eng, opts)
			if err != nil {
				return err
			}
			ln, err := net.Listen("tcp", addr)
			if err != nil {
				return err
			}
			// Requests' contexts end before Shutdown waits, so open event
			// streams of running runs do not hold it up.
			base, stopRequests := context.WithCancel(context.WithoutCancel(ctx))
			defer stopRequests()
			srv := &http.Server{Handler: withMetrics(h, metrics), ReadHeaderTimeout: 10 * time.Second, BaseContext: func(net.Listener) context.Context { return base }}
			served := make(chan error, 1)
			go func() { served <- srv.Serve(ln) }()
			fmt.Fprintf(s.stdout, "serving the FlowStone page for %s at http://%s/; stop with Ctrl-C or SIGTERM\n", s.describeDatabase(), ln.Addr())
			if len(opts.Users) == 0 && opts.Token == "" {
				fmt.Fprintln(s.stdout, "read-only: give --user NAME:PASSWORD to approve, reject and cancel from the page")
			}
			if host, _, _ := net.SplitHostPort(ln.Addr().String()); !net.ParseIP(host).IsLoopback() {
				fmt.Fprintf(s.stderr, "%s: serve listens on %s, beyond this machine: put it behind a TLS-terminating proxy, basic auth travels in clear text\n", s.app.Name, ln.Addr())
			}
			select {
			case err := <-served:
				return fmt.Errorf("serve: %w", err)
			case <-ctx.Done():
			}
			s.stopSignals()
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			defer cancel()
			stopRequests()
			if err := srv.Shutdown(sctx); err != nil {
				return fmt.Errorf("stop serving: %w", err)
			}
			fmt.Fprintln(s.stdout, "stopped serving")
			return nil
		}),
	}
	c.Flags().StringVar(&addr, "addr", defaultServeAddr, "address to listen on")
	c.Flags().StringArrayVar(&users, "user", nil, "NAME:PASSWORD of a user who may approve, reject and cancel; repeat for more (env "+EnvWebUsers+", comma-separated, better than the flag, which ps shows)")
	c.Flags().StringVar(&token, "token", "", "bearer token for API clients that write (env "+EnvWebToken+")")
	c.Flags().BoolVar(&workers, "workers", false, "also work jobs of the bound pipelines in this process")
	return c
}
