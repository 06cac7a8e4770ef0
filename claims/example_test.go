package claims_test

import (
	"context"
	"fmt"

	"github.com/verity-network/verity/claims"
)

func ExampleDecompose() {
	out := "Paris is the capital of France and the Seine flows through it. Dr. Smith said \"Stop. Now.\"\n- 17 * 3 = 51"
	for _, c := range claims.Decompose(out) {
		fmt.Println(c.Index, c.Text)
	}
	// Output:
	// 0 Paris is the capital of France.
	// 1 The Seine flows through it.
	// 2 Dr. Smith said "Stop. Now."
	// 3 17 * 3 = 51.
}

func ExampleNewVerifier() {
	v, err := claims.NewVerifier(claims.VerifierSpec{Backend: claims.DefaultBackend})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, c := range claims.Decompose("The capital of Australia is Sydney. 0.1 + 0.2 = 0.3. Cats like fish.") {
		fmt.Printf("%s -> %v\n", c.Text, v.Verify(context.Background(), c))
	}
	// Output:
	// The capital of Australia is Sydney. -> false
	// 0.1 + 0.2 = 0.3. -> true
	// Cats like fish. -> abstain
}
