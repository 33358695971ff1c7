// Package topology reads, validates, plans and loads heketi topology files
// (JSON or YAML, heketi's schema), and exports heketi's topology back to a
// file that loads again.
package topology
