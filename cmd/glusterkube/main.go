// Command glusterkube runs GlusterFS storage on Kubernetes through heketi.
package main

import (
	"os"

	"github.com/glusterkube/glusterkube/cmd/glusterkube/app"
)

func main() {
	os.Exit(app.Main(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
