package node

import (
	"context"
	"net/http"
	"strings"

	"github.com/verity-network/verity/api"
	"github.com/verity-network/verity/claims"
)

// generate answers a prompt with the node's generator and submits the
// answer for verification like submit.
func (g *gateway) generate(ctx context.Context, req api.GenerateRequest) (*api.Job, error) {
	gen := g.opts.Generator
	if gen == nil {
		return nil, requestError(ErrDisabled, "generate_disabled", "this node has no generator; set [generator] backend in its config")
	}
	if strings.TrimSpace(req.Prompt) == "" {
		return nil, requestError(ErrInvalidRequest, "empty_prompt", "prompt is empty")
	}
	if len(req.Prompt) > g.opts.MaxOutputBytes {
		return nil, requestError(ErrTooLarge, "prompt_too_large", "prompt is %d bytes; the limit is %d", len(req.Prompt), g.opts.MaxOutputBytes)
	}
	if m := req.Model; m != "" && m != gen.Name() && !strings.HasSuffix(gen.Name(), ":"+m) {
		return nil, requestError(ErrInvalidRequest, "unknown_model", "model %q: this node generates with %s", m, gen.Name())
	}
	if err := g.checkPending(); err != nil {
		return nil, err
	}
	answer, err := gen.Generate(ctx, req.Prompt)
	if err != nil {
		return nil, requestError(ErrUpstream, "generator_failed", "generator: %v", err)
	}
	return g.submit(ctx, api.VerifyRequest{
		Output: answer, Prompt: req.Prompt, Quorum: req.Quorum, Replication: req.Replication, DeadlineMS: req.DeadlineMS,
	})
}

func (h *httpAPI) handleGenerate(w http.ResponseWriter, r *http.Request) {
	if !h.admit(w, r, "generating") {
		return
	}
	var req api.GenerateRequest
	if !h.decodeBody(w, r, &req) {
		return
	}
	answer := h.awaitWork(w) // the model may take longer than the server's timeouts
	v, err := h.node.Generate(r.Context(), req)
	answer()
	if err != nil {
		h.writeRequestError(w, err)
		return
	}
	// The generated answer is new to the client and unproven: in strict
	// mode it is withheld (await the job); otherwise handing it out is a
	// read before proof, recorded like any other.
	if requireFinal(r) {
		withheld := *v
		// claims stays an array, empty, as the Job schema requires.
		withheld.Output, withheld.Claims = "", []claims.Claim{}
		writeJSON(w, http.StatusAccepted, &withheld)
		return
	}
	h.node.recordRead(v.JobID, h.clientIdentity(r), "POST /v1/generate")
	writeJSON(w, http.StatusAccepted, v)
}
