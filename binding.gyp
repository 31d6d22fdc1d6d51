{
  "target_defaults": {
    "include_dirs": ["native/include", "native/napi"],
    "cflags!": ["-fno-exceptions"],
    "cflags_cc!": ["-fno-exceptions", "-std=gnu++17", "-std=gnu++1y", "-std=gnu++14"],
    "cflags": ["-fno-exceptions", "-fvisibility=hidden", "-Wall", "-Wextra"],
    "cflags_cc": ["-std=c++20", "-fno-exceptions", "-fvisibility=hidden", "-Wall", "-Wextra"],
    "defines": ["_GNU_SOURCE"]
  },
  "targets": [
    {
      "target_name": "hearth",
      "sources": [
        "native/napi/js-args.cc",
        "native/napi/system-error.cc",
        "native/src/addon.cc",
        "native/src/cgroup-create.cc",
        "native/src/fds.cc",
        "native/src/inner-paths.cc",
        "native/src/loop-poll.cc",
        "native/src/mount-code.cc",
        "native/src/process.cc",
        "native/src/sandbox-enter.cc",
        "native/src/seccomp-filter.cc",
        "native/src/spawn-child.cc",
        "native/src/spawn.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=9", "NAPI_DISABLE_CPP_EXCEPTIONS", "NODE_ADDON_API_DISABLE_DEPRECATED"]
    },
    {
      "target_name": "hearth_sandbox",
      "type": "shared_library",
      "product_prefix": "",
      "product_extension": "so",
      "sources": ["native/src/sandbox-enter.cc", "native/src/seccomp-filter.cc"],
      "cflags_cc": ["-fno-rtti"]
    },
    {
      "target_name": "hearth-init",
      "type": "executable",
      "sources": ["native/init/hearth-init.cc"],
      "include_dirs": ["native/src"],
      "cflags!": ["-fPIC", "-pthread"],
      "cflags_cc!": ["-fPIC", "-pthread"],
      "cflags": ["-fno-stack-protector", "-fno-asynchronous-unwind-tables", "-fno-pie"],
      "cflags_cc": ["-fno-rtti", "-fno-stack-protector", "-fno-asynchronous-unwind-tables", "-fno-pie"],
      "ldflags!": ["-pthread", "-rdynamic"],
      "ldflags": ["-static", "-nostdlib", "-no-pie"],
      "libraries!": ["-lpthread"]
    },
    {
      "target_name": "hearth_net",
      "sources": [
        "native/napi/js-args.cc",
        "native/napi/system-error.cc",
        "native/net/addon.cc",
        "native/net/instance.cc",
        "native/net/link-workers.cc",
        "native/net/links.cc",
        "native/net/net-args.cc",
        "native/net/netns-calls.cc",
        "native/net/netns.cc",
        "native/net/rtnl.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=9", "NAPI_DISABLE_CPP_EXCEPTIONS", "NODE_ADDON_API_DISABLE_DEPRECATED"]
    },
    {
      "target_name": "hearth_net_probes",
      "sources": [
        "native/napi/js-args.cc",
        "native/napi/system-error.cc",
        "native/net/net-args.cc",
        "native/net/netns.cc",
        "native/net/rtnl.cc",
        "native/test/net-probes.cc"
      ],
      "include_dirs": ["native/net", "<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=9", "NAPI_DISABLE_CPP_EXCEPTIONS", "NODE_ADDON_API_DISABLE_DEPRECATED"]
    }
  ]
}
