package main

import (
	"bytes"
	"encoding/json"
	"math"
	"strings"
	"testing"

	"github.com/verity-network/verity/models"
)

func runAccuracyCLI(t *testing.T, args ...string) string {
	t.Helper()
	app := newApp()
	var out bytes.Buffer
	app.Writer = &out
	if err := app.Run(append([]string{"verity", "accuracy"}, args...)); err != nil {
		t.Fatalf("verity accuracy %v: %v", args, err)
	}
	return out.String()
}

func TestAccuracyCommandJSON(t *testing.T) {
	const n = 2000
	var rows []models.AccuracyRow
	if err := json.Unmarshal([]byte(runAccuracyCLI(t, "--claims", "2000", "--json")), &rows); err != nil {
		t.Fatalf("decode: %v", err)
	}
	if len(rows) != len(accuracyLevels)*len(accuracyPanels) {
		t.Fatalf("%d rows, want %d", len(rows), len(accuracyLevels)*len(accuracyPanels))
	}
	for _, r := range rows {
		if r.Claims != n {
			t.Errorf("row claims %d, want %d", r.Claims, n)
		}
		tol := 4 * math.Sqrt(r.Predicted*(1-r.Predicted)/n)
		if math.Abs(r.CertifiedCorrect-r.Predicted) > tol {
			t.Errorf("p=%v n=%d: certified correct %.4f, predicted %.4f", r.Accuracy, r.Validators, r.CertifiedCorrect, r.Predicted)
		}
		if r.CertifiedCorrect <= r.SingleModel-tol {
			t.Errorf("p=%v n=%d: the majority (%.4f) is worse than one validator (%.4f)", r.Accuracy, r.Validators, r.CertifiedCorrect, r.SingleModel)
		}
	}
}

func TestAccuracyCommandTable(t *testing.T) {
	out := runAccuracyCLI(t, "--claims", "300")
	for _, want := range []string{"certified correct", "predicted P(X>n/2)", "0.6", "0.8", "9 configurations in"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestAccuracyCommandRejectsNonPositiveClaims(t *testing.T) {
	app := newApp()
	app.Writer = &bytes.Buffer{}
	if err := app.Run([]string{"verity", "accuracy", "--claims", "0"}); err == nil {
		t.Fatal("no error for --claims 0")
	}
}
