package runtime

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/flowstone-go/flowstone"
	"github.com/flowstone-go/flowstone/strategy"
	"github.com/riverqueue/river"
)

// Errors of gate resolution.
var (
	// ErrGateResolved: the gate was already approved, rejected or timed out.
	ErrGateResolved = errors.New("gate already resolved")
	// ErrNotWaiting: the asset is not a gate waiting for a decision.
	ErrNotWaiting = errors.New("not a waiting gate")
	// ErrBadToken: a gate link's token is malformed, forged or expired.
	ErrBadToken = errors.New("invalid gate token")
	// ErrNoSecret: gates need Config.Secret.
	ErrNoSecret = errors.New("no secret for gate links")
)

func (e *Engine) checkSecret() error {
	var gated []string
	for _, b := range e.bindings {
		for _, a := range b.pipeline.assets {
			if s, ok := a.Strategy.(strategy.SecretUser); ok && s.UsesSecret() {
				gated = append(gated, b.pipeline.name+"."+a.Key)
			}
		}
	}
	if len(gated) == 0 || len(e.cfg.Secret) >= 16 {
		return nil
	}
	sort.Strings(gated)
	return fmt.Errorf("%w: %s sign their approval links; set Config.Secret (16 bytes or more, the same in every process)", ErrNoSecret, strings.Join(gated, ", "))
}

// Gate is an asset waiting for a decision, addressed by its Ref.
type Gate struct {
	Ref
	Pipeline string
	// Since is when its function started.
	Since time.Time
}

// Gates lists the gates waiting for a decision, oldest first, in pipeline
// (every pipeline when empty).
func (e *Engine) Gates(ctx context.Context, pipeline string) ([]Gate, error) {
	rows, err := e.st.Waiting(ctx, e.be.pool(), pipeline)
	if err != nil {
		return nil, err
	}
	var out []Gate
	for _, w := range rows {
		g := Gate{Ref: Ref{RunID: w.Run, Asset: w.Asset, Partition: flowstone.Partition(w.Partition)}, Pipeline: w.Pipeline, Since: time.UnixMicro(w.Since)}
		if b, ok := e.bindings[g.Pipeline]; ok {
			if a := b.pipeline.Asset(g.Asset); a == nil || !isGate(a) {
				continue
			}
		}
		out = append(out, g)
	}
	return out, nil
}

func isGate(a *AssetDef) bool {
	_, ok := a.Strategy.(strategy.Gate)
	return ok
}

// Approve approves the gate ref: its held value becomes its materialization
// and its dependents start. by and reason are recorded. A ref outside its
// run is refused with ErrNotInRun.
func (e *Engine) Approve(ctx context.Context, ref Ref, by, reason string) error {
	return e.decide(ctx, ref, strategy.GateDecision{Action: strategy.GateApprove, By: by, Reason: reason, At: time.Now()})
}

// Reject rejects the gate ref: it fails, and its dependents are
// upstream_failed. A ref outside its run is refused with ErrNotInRun.
func (e *Engine) Reject(ctx context.Context, ref Ref, by, reason string) error {
	return e.decide(ctx, ref, strategy.GateDecision{Action: strategy.GateReject, By: by, Reason: reason, At: time.Now()})
}

// decide stores the first decision for a waiting gate and schedules the
// job that applies it, in one transaction.
func (e *Engine) decide(ctx context.Context, ref Ref, d strategy.GateDecision) error {
	if err := e.writable(); err != nil {
		return err
	}
	if strings.TrimSpace(d.By) == "" {
		return fmt.Errorf("%s of %s: say who decides", d.Action, ref.Asset)
	}
	data, _ := json.Marshal(d)
	err := e.be.inTx(ctx, func(tx txn) error {
		node, err := e.resolveRef(ctx, tx, ref)
		if err != nil {
			return err
		}
		b, ok := e.bindings[node.pipeline]
		if !ok {
			return fmt.Errorf("%w: %s (bind it to decide its gates)", ErrUnknownPipeline, node.pipeline)
		}
		a := b.pipeline.Asset(ref.Asset)
		if a == nil || !isGate(a) {
			return fmt.Errorf("%w: %s is not a gate", ErrNotWaiting, ref.Asset)
		}
		prior, decided, err := e.st.State(ctx, tx, ref.node(), strategy.GateDecisionState)
		if err != nil {
			return err
		}
		if decided {
			var p strategy.GateDecision
			_ = json.Unmarshal([]byte(prior), &p)
			return fmt.Errorf("%w: gate %s was %s by %s at %s", ErrGateResolved, ref, pastTense(p.Action), p.By, p.At.Format(time.RFC3339))
		}
		if node.status != StatusWaiting {
			return fmt.Errorf("%w: gate %s is %s", ErrNotWaiting, ref, node.status)
		}
		saved, err := e.st.SaveState(ctx, tx, ref.node(), strategy.GateDecisionState, string(data))
		if err != nil {
			return err
		}
		if !saved { // the timeout decided at this very moment
			return fmt.Errorf("%w: gate %s", ErrGateResolved, ref)
		}
		signal, _ := json.Marshal(strategy.GateSignal{})
		run := &runCtx{id: ref.RunID, p: b.pipeline}
		return tx.insertJobs(ctx, []river.InsertManyParams{e.resumeJob(run, a, ref.Partition, signal, time.Time{})})
	})
	if err != nil {
		return err
	}
	e.log.InfoContext(ctx, "gate decided", "run", ref.RunID, "asset", ref.Asset, "partition", string(ref.Partition), "action", d.Action, "by", d.By)
	return nil
}

// gateClaims is what a gate link carries.
type gateClaims struct {
	Run       string `json:"r"`
	Asset     string `json:"a"`
	Partition string `json:"p,omitempty"`
	Action    string `json:"x"`
	Expires   int64  `json:"e"`
}

// GateToken returns a signed token that approves (action "approve") or
// rejects ("reject") the gate ref until ttl has passed. Put it in a link to
// GateHandler: ?token=.... The token carries the ref's partition under the
// signature, so a link decides that partition's gate only.
func (e *Engine) GateToken(ref Ref, action string, ttl time.Duration) (string, error) {
	if len(e.cfg.Secret) < 16 {
		return "", ErrNoSecret
	}
	if action != strategy.GateApprove && action != strategy.GateReject {
		return "", fmt.Errorf("gate action %q: want approve or reject", action)
	}
	if ttl <= 0 {
		return "", fmt.Errorf("gate token ttl %s: must be positive", ttl)
	}
	body, _ := json.Marshal(gateClaims{Run: ref.RunID, Asset: ref.Asset, Partition: string(ref.Partition), Action: action, Expires: time.Now().Add(ttl).Unix()})
	enc := base64.RawURLEncoding
	payload := enc.EncodeToString(body)
	return payload + "." + enc.EncodeToString(e.sign(payload)), nil
}

func (e *Engine) sign(payload string) []byte {
	m := hmac.New(sha256.New, e.cfg.Secret)
	m.Write([]byte("flowstone-gate:" + payload))
	return m.Sum(nil)
}

// verifyGateToken checks a token's signature in constant time, then its
// expiry.
func (e *Engine) verifyGateToken(token string) (gateClaims, error) {
	var c gateClaims
	if len(e.cfg.Secret) < 16 {
		return c, ErrNoSecret
	}
	payload, sig, ok := strings.Cut(token, ".")
	if !ok {
		return c, fmt.Errorf("%w: malformed", ErrBadToken)
	}
	got, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil || !hmac.Equal(got, e.sign(payload)) {
		return c, fmt.Errorf("%w: bad signature", ErrBadToken)
	}
	body, err := base64.RawURLEncoding.DecodeString(payload)
	if err != nil || json.Unmarshal(body, &c) != nil {
		return c, fmt.Errorf("%w: malformed", ErrBadToken)
	}
	if time.Now().Unix() >= c.Expires {
		return c, fmt.Errorf("%w: expired at %s", ErrBadToken, time.Unix(c.Expires, 0).UTC().Format(time.RFC3339))
	}
	return c, nil
}

// DecideWithToken applies a gate link's decision, recorded as by.
func (e *Engine) DecideWithToken(ctx context.Context, token, by, reason string) error {
	c, err := e.verifyGateToken(token)
	if err != nil {
		return err
	}
	if by == "" {
		by = "signed link"
	}
	return e.decide(ctx, c.ref(), strategy.GateDecision{Action: c.Action, By: by, Reason: reason, At: time.Now()})
}

var gatePage = template.Must(template.New("gate").Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>FlowStone gate</title></head>
<body style="font-family: sans-serif; max-width: 40em; margin: 3em auto">
<h1>{{.Title}}</h1>
<p>{{.Message}}</p>
{{if .Form}}<form method="post">
<input type="hidden" name="token" value="{{.Token}}">
<p><label>Your name <input name="by" required></label></p>
<p><label>Reason <input name="reason" size="40"></label></p>
<p><button type="submit">{{.Action}}</button></p>
</form>{{end}}
</body></html>`))

// GateHandler serves gate links: GET ?token=... shows what the link will
// do and a confirmation form (so link previews change nothing); POST
// applies it. A forged or expired token answers 403, a gate already
// resolved 409.
func (e *Engine) GateHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token := r.FormValue("token")
		c, err := e.verifyGateToken(token)
		page := struct {
			Title, Message, Token, Action string
			Form                          bool
		}{Token: token}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		if err != nil {
			w.WriteHeader(http.StatusForbidden)
			page.Title, page.Message = "Invalid link", err.Error()
			_ = gatePage.Execute(w, page)
			return
		}
		switch r.Method {
		case http.MethodGet:
			page.Title = strings.ToUpper(c.Action[:1]) + c.Action[1:] + " " + c.Asset
			page.Message = "Run " + c.Run + ": " + c.Action + " the value of " + c.Asset + partitionPhrase(c.Partition) + "?"
			page.Action, page.Form = c.Action, true
			_ = gatePage.Execute(w, page)
		case http.MethodPost:
			by := r.FormValue("by")
			if by == "" {
				by = "signed link"
			}
			err := e.decide(r.Context(), c.ref(), strategy.GateDecision{Action: c.Action, By: by, Reason: r.FormValue("reason"), At: time.Now()})
			switch {
			case errors.Is(err, ErrGateResolved), errors.Is(err, ErrNotWaiting):
				w.WriteHeader(http.StatusConflict)
				page.Title, page.Message = "Nothing changed", err.Error()
			case err != nil:
				w.WriteHeader(http.StatusInternalServerError)
				page.Title, page.Message = "Error", err.Error()
			default:
				page.Title, page.Message = "Done", c.Asset+partitionPhrase(c.Partition)+" of run "+c.Run+": "+pastTense(c.Action)+" by "+by+"."
			}
			_ = gatePage.Execute(w, page)
		default:
			w.WriteHeader(http.StatusMethodNotAllowed)
		}
	})
}

func (c gateClaims) ref() Ref {
	return Ref{RunID: c.Run, Asset: c.Asset, Partition: flowstone.Partition(c.Partition)}
}

// partitionPhrase words a partition for the gate page: "" when
// unpartitioned.
func partitionPhrase(p string) string {
	if p == "" {
		return ""
	}
	return " (partition " + p + ")"
}

// pastTense words a gate action for messages.
func pastTense(action string) string {
	switch action {
	case strategy.GateApprove:
		return "approved"
	case strategy.GateReject:
		return "rejected"
	case strategy.GateFail:
		return "failed"
	}
	return action
}
