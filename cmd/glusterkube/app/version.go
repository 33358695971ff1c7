package app

import (
	"context"
	"fmt"
	"runtime"
)

// Version is set at link time with -X .../app.Version=...
var Version = "v0.1.0-dev"

func versionCommand() *Command {
	return &Command{
		Name:  "version",
		Short: "print the glusterkube version",
		Run: func(_ context.Context, g *Globals, args []string) error {
			if err := NoArgs(args); err != nil {
				return err
			}
			fmt.Fprintf(g.Out, "glusterkube %s (%s, %s/%s)\n", Version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
			return nil
		},
	}
}
