package cli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/flowstone-go/flowstone"
	"github.com/flowstone-go/flowstone/runtime"
	"github.com/flowstone-go/flowstone/runtime/internal/websec"
	"github.com/flowstone-go/flowstone/strategy"
	"github.com/spf13/cobra"
)

// Defaults of the gate link commands: gate-link's base URL is where
// serve-gates listens by default.
const (
	defaultGateAddr = "127.0.0.1:8080"
	defaultGateURL  = "http://" + defaultGateAddr + "/gate"
	defaultGateTTL  = 48 * time.Hour
)

func (s *session) gatesCommand() *cobra.Command {
	var decided bool
	var limit int
	c := &cobra.Command{
		Use:   "gates [--decided]",
		Short: "List the gates waiting for approval, or the decided ones",
		Long: `Gates lists the gate assets whose value is computed and held, waiting for
someone to approve or reject it, oldest first: of the pipeline chosen with
--pipeline, or of every pipeline in the database.
With --decided it lists the decisions instead, newest run first: what was
decided, by whom and when. A name no sign-in vouched for (--by here, a name
typed on a gate link's page without an authenticating proxy) reads
"NAME (unverified)".`,
		Args: cobra.NoArgs,
		RunE: run(func(c *cobra.Command, _ []string) error {
			ctx := c.Context()
			eng, bs, err := s.openAllRead(ctx)
			if err != nil {
				return err
			}
			defer closeEngine(ctx, eng, closeTimeout)
			withPipeline := s.pipeline == "" && len(bs) > 1
			if decided {
				return s.decidedGates(ctx, eng, withPipeline, limit)
			}
			gates, err := eng.Gates(ctx, s.pipeline)
			if err != nil {
				return err
			}
			if len(gates) == 0 {
				fmt.Fprintln(s.stdout, "no gates waiting")
				return nil
			}
			header := []string{"RUN", "ASSET", "PARTITION", "WAITING SINCE"}
			if withPipeline {
				header = []string{"RUN", "PIPELINE", "ASSET", "PARTITION", "WAITING SINCE"}
			}
			var rows [][]string
			for _, g := range gates {
				row := []string{g.RunID, g.Asset, string(g.Partition), timestamp(g.Since)}
				if withPipeline {
					row = slices.Insert(row, 1, g.Pipeline)
				}
				rows = append(rows, row)
			}
			return table(s.stdout, header, rows)
		}),
	}
	c.Flags().BoolVar(&decided, "decided", false, "list the decisions (who approved or rejected what, and when) instead")
	c.Flags().IntVar(&limit, "limit", 50, "with --decided, how many decisions to list")
	return c
}

// decidedGates prints the gates' decisions, newest run first.
func (s *session) decidedGates(ctx context.Context, eng *runtime.Engine, withPipeline bool, limit int) error {
	if limit <= 0 {
		return usageErr("--limit %d: must be positive", limit)
	}
	gates, err := eng.DecidedGates(ctx, s.pipeline, limit)
	if err != nil {
		return err
	}
	if len(gates) == 0 {
		fmt.Fprintln(s.stdout, "no gates decided")
		return nil
	}
	header := []string{"RUN", "ASSET", "PARTITION", "DECISION", "BY", "AT", "REASON"}
	if withPipeline {
		header = slices.Insert(header, 1, "PIPELINE")
	}
	var rows [][]string
	for _, g := range gates {
		d := g.Decision
		reason := d.Reason
		if reason == "" {
			reason = "-"
		}
		row := []string{g.RunID, g.Asset, orDash(string(g.Partition)), d.Outcome(), d.Decider(), timestamp(d.At), reason}
		if withPipeline {
			row = slices.Insert(row, 1, g.Pipeline)
		}
		rows = append(rows, row)
	}
	return table(s.stdout, header, rows)
}

// decideCommand is approve or reject, by action.
func (s *session) decideCommand(action string) *cobra.Command {
	var by, reason, partition string
	past := "approved"
	long := `Approve releases the value a gate holds: it becomes the asset's
materialization and the assets after it start, on whichever processes work
the pipeline.`
	if action == strategy.GateReject {
		past = "rejected"
		long = `Reject fails the gate asset: its held value is discarded and the assets
that require it are marked upstream_failed.`
	}
	c := &cobra.Command{
		Use:   action + " RUN_ID ASSET [--partition KEY]",
		Short: strings.ToUpper(action[:1]) + action[1:] + " a gate waiting in a run",
		Long: long + `

--partition chooses the gate's partition when the run holds it at several
(an hourly gate under a daily target); it may be left out when the run
holds the asset at one partition only. The decision is recorded with --by
and --reason. Only the first decision counts: deciding a gate that was
already approved, rejected or timed out is an error and changes nothing.`,
		Args: cobra.ExactArgs(2),
		RunE: run(func(c *cobra.Command, args []string) error {
			ctx := c.Context()
			runID, asset := args[0], args[1]
			if !c.Flags().Changed("by") {
				by = os.Getenv("USER")
			}
			if strings.TrimSpace(by) == "" {
				return usageErr("%s: say who decides with --by NAME (USER is not set)", action)
			}
			eng, _, err := s.openAll(ctx, false)
			if err != nil {
				return err
			}
			defer closeEngine(ctx, eng, closeTimeout)
			ref, _, err := gateRef(ctx, eng, runID, asset, partition, c.Flags().Changed("partition"))
			if err != nil {
				return err
			}
			decide := eng.Approve
			if action == strategy.GateReject {
				decide = eng.Reject
			}
			if err := decide(ctx, ref, by, reason); err != nil {
				return s.decideErr(ctx, eng, ref, err)
			}
			because := ""
			if reason != "" {
				because = ": " + reason
			}
			fmt.Fprintf(s.stdout, "%s %s%s of run %s as %s%s\n", past, asset, gatePartition(ref.Partition), runID, by, because)
			fmt.Fprintf(s.stdout, "the run goes on where workers run; follow it with: %s status --follow %s\n", s.app.Name, runID)
			return nil
		}),
	}
	c.Flags().StringVar(&partition, "partition", "", "the gate's partition in the run (default: its only one)")
	c.Flags().StringVar(&by, "by", "", "who decides, recorded with the decision (default $USER)")
	c.Flags().StringVar(&reason, "reason", "", "why, recorded with the decision")
	return c
}

// gateRef addresses asset of run runID at partition, refusing a ref
// outside the run as a usage error. Without --partition (given false) it
// takes the asset's only partition in the run; with several it asks for
// one. It returns the node's state too.
func gateRef(ctx context.Context, eng *runtime.Engine, runID, asset, partition string, given bool) (runtime.Ref, runtime.RunResult, error) {
	ref := runtime.Ref{RunID: runID, Asset: asset, Partition: flowstone.Partition(partition)}
	res, err := eng.Run(ctx, runID)
	if err != nil {
		return ref, res, err
	}
	if parts := res.ByPartition[asset]; !given && len(parts) == 1 {
		for p := range parts {
			ref.Partition = p
		}
	}
	if _, err := res.Node(ref); err != nil {
		if !given && len(res.ByPartition[asset]) > 1 {
			err = fmt.Errorf("%w; choose one with --partition", err)
		}
		return ref, res, usageErr("%w", err)
	}
	return ref, res, nil
}

// decideErr explains why a decision was refused; the engine's error stays
// matchable. A ref outside its run is a usage error.
func (s *session) decideErr(ctx context.Context, eng *runtime.Engine, ref runtime.Ref, err error) error {
	switch {
	case errors.Is(err, runtime.ErrNotInRun):
		return usageErr("%w", err)
	case errors.Is(err, runtime.ErrGateResolved):
		return fmt.Errorf("%w; nothing changed", err)
	case !errors.Is(err, runtime.ErrNotWaiting):
		return err
	}
	// Say what the gate is doing instead, when the run says more.
	res, rerr := eng.Run(ctx, ref.RunID)
	if rerr != nil {
		return fmt.Errorf("%w (%w)", rerr, err)
	}
	a, ok := res.ByPartition[ref.Asset][ref.Partition]
	if ok && !a.Status.Terminal() && isGate(eng, res.Pipeline, ref.Asset) {
		return fmt.Errorf("%w; it has not computed the value to approve yet: try again once %s gates lists it", err, s.app.Name)
	}
	return err
}

// gatePartition words a gate's partition for messages: "" when
// unpartitioned.
func gatePartition(p flowstone.Partition) string {
	if p == "" {
		return ""
	}
	return " (partition " + string(p) + ")"
}

// isGate reports whether asset of pipeline is a gate in this program.
func isGate(eng *runtime.Engine, pipeline, asset string) bool {
	p, err := eng.Pipeline(pipeline)
	if err != nil {
		return false
	}
	a := p.Asset(asset)
	if a == nil {
		return false
	}
	_, ok := a.Strategy.(strategy.Gate)
	return ok
}

func (s *session) gateLinkCommand() *cobra.Command {
	var action, base, partition string
	var ttl time.Duration
	c := &cobra.Command{
		Use:   "gate-link RUN_ID ASSET [--partition KEY]",
		Short: "Print a signed link that approves or rejects a gate",
		Long: `Gate-link prints a URL that approves (or, with --action reject, rejects)
one gate of one run (at --partition, when the run holds it at several) until
--ttl has passed, for an e-mail or a chat message.
The token in it is signed with the secret (FLOWSTONE_SECRET or --secret);
serve-gates, run with the same secret, answers it: opening the link shows
what it will do and asks for a name and a reason, so a link preview changes
nothing.`,
		Args: cobra.ExactArgs(2),
		RunE: run(func(c *cobra.Command, args []string) error {
			ctx := c.Context()
			runID, asset := args[0], args[1]
			if action != strategy.GateApprove && action != strategy.GateReject {
				return usageErr("--action %q: want approve or reject", action)
			}
			if ttl <= 0 {
				return usageErr("--ttl %s: must be positive", ttl)
			}
			if u, err := url.Parse(base); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Fragment != "" {
				return usageErr("--base-url %q: want an http:// or https:// URL, e.g. %s", base, defaultGateURL)
			}
			eng, _, err := s.openAll(ctx, false)
			if err != nil {
				return err
			}
			defer closeEngine(ctx, eng, closeTimeout)
			ref, res, err := gateRef(ctx, eng, runID, asset, partition, c.Flags().Changed("partition"))
			if err != nil {
				return err
			}
			a, _ := res.Node(ref)
			switch {
			case !isGate(eng, res.Pipeline, asset):
				return fmt.Errorf("%w: %s is not a gate", runtime.ErrNotWaiting, asset)
			case a.Status.Terminal():
				return fmt.Errorf("%w: gate %s is %s; a link would change nothing", runtime.ErrGateResolved, ref, a.Status)
			}
			link, err := eng.GateLink(base, ref, action, ttl)
			if err != nil {
				return err
			}
			fmt.Fprintln(s.stdout, link)
			fmt.Fprintf(s.stderr, "%s: this link can %s %s%s of run %s until %s; %s serve-gates answers it\n",
				s.app.Name, action, asset, gatePartition(ref.Partition), runID, timestamp(time.Now().Add(ttl)), s.app.Name)
			return nil
		}),
	}
	c.Flags().StringVar(&partition, "partition", "", "the gate's partition in the run (default: its only one)")
	c.Flags().StringVar(&action, "action", strategy.GateApprove, "what the link does: approve or reject")
	c.Flags().DurationVar(&ttl, "ttl", defaultGateTTL, "how long the link works")
	c.Flags().StringVar(&base, "base-url", defaultGateURL, "where serve-gates is reached, as users will open it: its --public-url followed by gate")
	return c
}

func (s *session) serveGatesCommand() *cobra.Command {
	var addr, userHeader, publicURL string
	var trustForwarded bool
	c := &cobra.Command{
		Use:   "serve-gates",
		Short: "Serve signed gate links over HTTP until interrupted",
		Long: `Serve-gates answers the links gate-link prints, at /gate on --addr, until
SIGINT or SIGTERM. It works no jobs: a decision it records is carried out
by the pipeline's workers. Put it behind your TLS-terminating proxy to
reach it from outside; the tokens are signed and expire, and a forged or
expired one is refused (403).
Opening a link shows a page; only that page's form, posted from the same
origin, decides (a bare POST of the link is refused, 403), and only once:
a decided link says who decided and when (409). Behind a proxy that
authenticates users, --trusted-user-header names the header it sets (for
example X-Forwarded-User): decisions are recorded under that user,
verified, and requests without it are refused. Without it, the page asks
for a name, recorded as unverified.
Behind a proxy that changes Host or the scheme (TLS termination, nginx
without proxy_set_header Host, most ingress controllers), give the address
users open with --public-url (for example https://ops.example.com/, whose
links are https://ops.example.com/gate?token=...): the page's form must
come from its origin. Without it every decision is refused there (403,
saying what to configure). --trust-forwarded-headers takes that origin from
the proxy's X-Forwarded-Host and X-Forwarded-Proto (or Forwarded) instead:
only when the proxy sets them and nothing reaches serve-gates around it.`,
		Args: cobra.NoArgs,
		RunE: run(func(c *cobra.Command, _ []string) error {
			ctx := c.Context()
			public, err := checkPublicURL(c, publicURL, trustForwarded)
			if err != nil {
				return err
			}
			eng, _, err := s.openAll(ctx, false)
			if err != nil {
				return err
			}
			defer closeEngine(ctx, eng, closeTimeout)
			ln, err := net.Listen("tcp", addr)
			if err != nil {
				return err
			}
			var opts []runtime.GateOption
			if userHeader != "" {
				opts = append(opts, runtime.TrustUserHeader(userHeader))
			}
			if public != nil {
				opts = append(opts, runtime.GatePublicURL(public.String()))
			}
			if trustForwarded {
				opts = append(opts, runtime.TrustForwardedHeaders())
			}
			mux := http.NewServeMux()
			mux.Handle("/gate", eng.GateHandler(opts...))
			site := websec.Site{Public: public}
			handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { mux.ServeHTTP(site.Redirects(w), r) })
			srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}
			served := make(chan error, 1)
			go func() { served <- srv.Serve(ln) }()
			at := "http://" + ln.Addr().String() + "/gate"
			if public != nil {
				at = public.JoinPath("gate").String() + " (listening on " + ln.Addr().String() + ")"
			}
			fmt.Fprintf(s.stdout, "serving gate links at %s; stop with Ctrl-C or SIGTERM\n", at)
			if public != nil {
				fmt.Fprintf(s.stdout, "print links for it with: %s gate-link RUN_ID ASSET --base-url %s\n", s.app.Name, public.JoinPath("gate"))
			}
			if userHeader != "" {
				fmt.Fprintf(s.stdout, "deciding as the user the proxy names in %s; requests without it are refused\n", http.CanonicalHeaderKey(userHeader))
			} else {
				fmt.Fprintln(s.stdout, "no --trusted-user-header: the names typed on the page are recorded as unverified")
			}
			select {
			case err := <-served:
				return fmt.Errorf("serve gate links: %w", err)
			case <-ctx.Done():
			}
			s.stopSignals()
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			defer cancel()
			if err := srv.Shutdown(sctx); err != nil {
				return fmt.Errorf("stop serving gate links: %w", err)
			}
			fmt.Fprintln(s.stdout, "stopped serving gate links")
			return nil
		}),
	}
	c.Flags().StringVar(&addr, "addr", defaultGateAddr, "address to listen on")
	c.Flags().StringVar(&userHeader, "trusted-user-header", "", "header naming the signed-in user, set by the authenticating proxy in front (e.g. X-Forwarded-User); only set it behind such a proxy")
	publicFlags(c, &publicURL, &trustForwarded, "https://ops.example.com/")
	return c
}
