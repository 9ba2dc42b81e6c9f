{
  "targets": [
    {
      "target_name": "wgts",
      "sources": ["csrc/wgts.c", "csrc/napi.c", "csrc/tun.c", "csrc/udp.c", "csrc/poll.c", "csrc/netns.c", "csrc/netlink.c", "csrc/ctl.c", "csrc/rtmon.c", "csrc/csum.c", "csrc/gso.c", "csrc/gro.c", "csrc/offload-buffers.c"],
      "defines": ["NAPI_VERSION=8", "_GNU_SOURCE"],
      "cflags": ["-Wall", "-Wextra", "-O2", "-std=gnu11"],
      "cflags!": ["-fno-exceptions"],
      "conditions": [
        ["OS!='linux'", {"type": "none"}]
      ]
    },
    {
      "target_name": "net-admin-helper",
      "type": "executable",
      "sources": ["csrc/helper/net-admin-helper.c"],
      "defines": ["_GNU_SOURCE", "WGTS_NODE=\"<!(node -p process.execPath)\""],
      "cflags": ["-Wall", "-Wextra", "-O2", "-std=gnu11"],
      "conditions": [
        ["OS!='linux'", {"type": "none"}]
      ]
    },
    {
      "target_name": "wgts_crypto",
      "sources": ["csrc/aead.c", "csrc/chapoly.c", "csrc/x25519.c"],
      "defines": ["NAPI_VERSION=8"],
      "cflags": ["-Wall", "-Wextra", "-O2", "-std=gnu11"],
      "conditions": [
        ["OS!='linux'", {"type": "none"}]
      ]
    }
  ]
}
