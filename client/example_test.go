package client_test

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/verity-network/verity/api"
	"github.com/verity-network/verity/client"
	"github.com/verity-network/verity/testnet"
)

// Submit an output, then wait for its proof. Await returns only a
// certificate it has verified against the validator set; the provisional
// answer of Submit proves nothing.
func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dir, _ := os.MkdirTemp("", "verity-example-")
	defer os.RemoveAll(dir)
	// A 4-validator network in this process, on loopback.
	net, err := testnet.NewEphemeral(ctx, testnet.EphemeralOptions{Nodes: 4, APIs: true, Dir: dir})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer net.Stop()
	node := net.Nodes()[0]

	c := client.New(node.APIURL())
	output := "Paris is the capital of France. The Sun orbits the Earth."
	job, err := c.Submit(ctx, api.VerifyRequest{Output: output})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("answer:", job.Status)

	// In a real deployment, load the validator set from genesis.json
	// (consensus.LoadGenesis) rather than from the node you are asking.
	set, err := c.Validators(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	cert, err := c.Await(ctx, job.JobID, set, client.AwaitOptions{Output: []byte(output)})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("proof:", cert.Status)
	for _, cl := range cert.Claims {
		fmt.Printf("  %-5s %s\n", cl.Verdict, cl.Text)
	}
	// Output:
	// answer: provisional
	// proof: rejected
	//   true  Paris is the capital of France.
	//   false The Sun orbits the Earth.
}
