package cli

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/flowstone-go/flowstone/runtime/internal/websec"
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
	var addr, token, publicURL string
	var users []string
	var workers, trustForwarded bool
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
jobs unless --workers is given.
Behind a reverse proxy that changes Host or the scheme (TLS termination,
nginx without proxy_set_header Host, most ingress controllers), give the
address users open with --public-url (for example
https://ops.example.com/flowstone/): writes must come from its origin, and
redirects point under it. Without it every approve, reject and cancel is
refused there (403, saying what to configure). --trust-forwarded-headers
takes that origin from the proxy's X-Forwarded-Host and X-Forwarded-Proto
(or Forwarded) instead: only when the proxy sets them and nothing reaches
serve around it.`,
		Args: cobra.NoArgs,
		RunE: run(func(c *cobra.Command, _ []string) error {
			ctx := c.Context()
			if !c.Flags().Changed("user") && os.Getenv(EnvWebUsers) != "" {
				users = strings.Split(os.Getenv(EnvWebUsers), ",")
			}
			if !c.Flags().Changed("token") {
				token = os.Getenv(EnvWebToken)
			}
			opts := web.Options{Users: map[string]string{}, Token: token, PublicURL: publicURL, TrustForwardedHeaders: trustForwarded}
			public, err := checkPublicURL(c, publicURL, trustForwarded)
			if err != nil {
				return err
			}
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
			at := "http://" + ln.Addr().String() + "/"
			if public != nil {
				at = public.String() + " (listening on " + ln.Addr().String() + ")"
			}
			fmt.Fprintf(s.stdout, "serving the FlowStone page for %s at %s; stop with Ctrl-C or SIGTERM\n", s.describeDatabase(), at)
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
	publicFlags(c, &publicURL, &trustForwarded, "https://ops.example.com/flowstone/")
	return c
}

// publicFlags adds --public-url and --trust-forwarded-headers to a
// command that serves pages behind a reverse proxy.
func publicFlags(c *cobra.Command, publicURL *string, trust *bool, example string) {
	c.Flags().StringVar(publicURL, "public-url", "", "the URL users open, behind a reverse proxy that changes Host or the scheme (e.g. "+example+"): decisions must come from its origin, and links and redirects point under it")
	c.Flags().BoolVar(trust, "trust-forwarded-headers", false, "without --public-url, take the origin users open from the proxy's X-Forwarded-Host and X-Forwarded-Proto (or Forwarded); only when the proxy sets them and nothing reaches this server around it")
}

// checkPublicURL checks --public-url (nil when not given) and that it is
// not given with --trust-forwarded-headers: the two say the same thing
// two ways, and one would silently win.
func checkPublicURL(c *cobra.Command, publicURL string, trust bool) (*url.URL, error) {
	if !c.Flags().Changed("public-url") {
		return nil, nil
	}
	if trust {
		return nil, usageErr("--public-url and --trust-forwarded-headers: give one; the public URL already says where users open this server")
	}
	u, err := websec.ParsePublicURL(publicURL)
	if err != nil {
		return nil, usageErr("--public-url: %w", err)
	}
	return u, nil
}
