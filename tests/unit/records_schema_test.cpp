// docs/records.schema.json is the contract of --json output: every record the JSON sink
// writes must match it, and every field it documents must be written by some record. A field
// added to the sink without documenting it, or documented without being written, fails here.
#include <gtest/gtest.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "record_fixtures.hpp"
#include "sinks/json_sink.hpp"
#include "tcptrail/connection_table.hpp"

namespace tcptrail {
namespace {

using namespace fixtures;  // NOLINT(google-build-using-namespace)

using Json = nlohmann::ordered_json;

// The subset of JSON Schema 2020-12 that docs/records.schema.json uses: type (a name or an
// array of names), const, enum, required, properties, additionalProperties (false only),
// items, oneOf, minimum, maximum, pattern and local "#/$defs/NAME" references. Annotations
// are ignored; any other keyword is reported, so the schema cannot rely on one that is not
// checked. Unlike JSON Schema, properties are also expected in the order the schema lists
// them, which the sink promises.
class SchemaValidator {
public:
  explicit SchemaValidator(const Json& root) : root_(root) {}

  // The errors of `value` against the root schema (empty when it is valid), and the index
  // of the oneOf branch it matched (-1 if none).
  [[nodiscard]] std::vector<std::string> validate(const Json& value, int* branch = nullptr) const {
    std::vector<std::string> errors;
    const int matched = check_one_of(root_, value, "", errors);
    if (branch != nullptr) {
      *branch = matched;
    }
    return errors;
  }

  [[nodiscard]] const Json& resolve(const Json& schema) const {
    if (!schema.contains("$ref")) {
      return schema;
    }
    static const std::string kPrefix = "#/$defs/";
    const std::string ref = schema["$ref"].get<std::string>();
    if (ref.rfind(kPrefix, 0) != 0 || !root_["$defs"].contains(ref.substr(kPrefix.size()))) {
      throw std::runtime_error("unresolvable $ref " + ref);
    }
    return resolve(root_["$defs"][ref.substr(kPrefix.size())]);
  }

private:
  static bool has_type(const Json& value, const std::string& type) {
    static const std::map<std::string, bool (Json::*)() const noexcept> kTests = {
        {"object", &Json::is_object}, {"array", &Json::is_array},
        {"string", &Json::is_string}, {"boolean", &Json::is_boolean},
        {"null", &Json::is_null},     {"integer", &Json::is_number_integer},
        {"number", &Json::is_number}};
    const auto test = kTests.find(type);
    if (test == kTests.end()) {
      throw std::runtime_error("unknown type " + type);
    }
    return (value.*(test->second))();
  }

  static double as_double(const Json& number) { return number.get<double>(); }

  void check(const Json& schema_or_ref, const Json& value, const std::string& path,
             std::vector<std::string>& errors) const {
    static const std::set<std::string> kAnnotations = {"$schema", "$defs",       "$ref",
                                                       "title",   "description", "format"};
    static const std::set<std::string> kAssertions = {
        "type",  "const", "enum",    "required", "properties", "additionalProperties",
        "items", "oneOf", "minimum", "maximum",  "pattern"};
    const Json& schema = resolve(schema_or_ref);
    const std::string where = path.empty() ? "(record)" : path;
    for (const auto& [keyword, unused] : schema.items()) {
      if (!kAnnotations.contains(keyword) && !kAssertions.contains(keyword)) {
        errors.push_back(where + ": schema keyword '" + keyword + "' is not supported");
      }
    }
    if (schema.contains("type")) {
      const Json& type = schema["type"];
      bool ok = false;
      for (const Json& name : type.is_array() ? type : Json::array({type})) {
        ok = ok || has_type(value, name.get<std::string>());
      }
      if (!ok) {
        errors.push_back(where + ": " + value.dump() + " is not of type " + type.dump());
        return;
      }
    }
    if (schema.contains("const") && value != schema["const"]) {
      errors.push_back(where + ": " + value.dump() + " is not " + schema["const"].dump());
    }
    if (schema.contains("enum")) {
      const Json& choices = schema["enum"];
      if (std::find(choices.begin(), choices.end(), value) == choices.end()) {
        errors.push_back(where + ": " + value.dump() + " is not one of " + choices.dump());
      }
    }
    if (value.is_number()) {
      if (schema.contains("minimum") && as_double(value) < as_double(schema["minimum"])) {
        errors.push_back(where + ": " + value.dump() + " is below the minimum");
      }
      if (schema.contains("maximum") && as_double(value) > as_double(schema["maximum"])) {
        errors.push_back(where + ": " + value.dump() + " is above the maximum");
      }
    }
    if (value.is_string() && schema.contains("pattern") &&
        !std::regex_search(value.get<std::string>(),
                           std::regex(schema["pattern"].get<std::string>()))) {
      errors.push_back(where + ": " + value.dump() + " does not match " +
                       schema["pattern"].get<std::string>());
    }
    if (value.is_array() && schema.contains("items")) {
      for (std::size_t i = 0; i < value.size(); ++i) {
        check(schema["items"], value[i], path + "[" + std::to_string(i) + "]", errors);
      }
    }
    if (value.is_object()) {
      check_object(schema, value, path, errors);
    }
    if (schema.contains("oneOf")) {
      check_one_of(schema, value, path, errors);
    }
  }

  void check_object(const Json& schema, const Json& value, const std::string& path,
                    std::vector<std::string>& errors) const {
    const std::string prefix = path.empty() ? "" : path + ".";
    for (const Json& name : schema.value("required", Json::array())) {
      if (!value.contains(name.get<std::string>())) {
        errors.push_back(prefix + name.get<std::string>() + ": required but missing");
      }
    }
    const Json properties = schema.value("properties", Json::object());
    std::size_t last_position = 0;
    for (const auto& [name, field] : value.items()) {
      auto it = properties.find(name);
      if (it == properties.end()) {
        if (!schema.value("additionalProperties", true)) {
          errors.push_back(prefix + name + ": not in the schema");
        }
        continue;
      }
      const auto position = static_cast<std::size_t>(std::distance(properties.begin(), it));
      if (position < last_position) {
        errors.push_back(prefix + name + ": out of the order the schema lists");
      }
      last_position = position;
      check(*it, field, prefix + name, errors);
    }
  }

  // Exactly one branch must match. When none does, the errors shown are those of the branches
  // the record's "type" (and "kind") select, which say what is wrong with it.
  int check_one_of(const Json& schema, const Json& value, const std::string& path,
                   std::vector<std::string>& errors) const {
    const Json& branches = schema["oneOf"];
    std::vector<int> matched;
    std::vector<std::string> selected_errors;
    for (std::size_t i = 0; i < branches.size(); ++i) {
      std::vector<std::string> branch_errors;
      check(branches[i], value, path, branch_errors);
      if (branch_errors.empty()) {
        matched.push_back(static_cast<int>(i));
      } else if (selects(branches[i], value)) {
        selected_errors.insert(selected_errors.end(), branch_errors.begin(), branch_errors.end());
      }
    }
    if (matched.size() == 1) {
      return matched.front();
    }
    const std::string where = path.empty() ? "(record)" : path;
    if (matched.size() > 1) {
      errors.push_back(where + ": matches " + std::to_string(matched.size()) + " oneOf branches");
    } else if (selected_errors.empty()) {
      errors.push_back(where + ": no record shape has this type/kind");
    } else {
      errors.insert(errors.end(), selected_errors.begin(), selected_errors.end());
    }
    return -1;
  }

  [[nodiscard]] bool selects(const Json& branch, const Json& value) const {
    if (!value.is_object()) {
      return false;
    }
    for (const char* discriminator : {"type", "kind"}) {
      if (!branch["properties"].contains(discriminator)) {
        continue;
      }
      std::vector<std::string> errors;
      check(branch["properties"][discriminator], value.value(discriminator, Json()), "", errors);
      if (!errors.empty()) {
        return false;
      }
    }
    return true;
  }

  const Json& root_;
};

Json load_schema() {
  const std::string path = std::string(TCPTRAIL_DOCS_DIR) + "/records.schema.json";
  std::ifstream in(path);
  if (!in) {
    throw std::runtime_error("cannot open " + path + ": " + std::strerror(errno));
  }
  return Json::parse(in);
}

IpAddress ipv6_documentation(std::uint8_t last) {
  IpAddress address;
  address.family = 6;
  address.bytes = {0x20, 0x01, 0x0d, 0xb8};
  address.bytes[15] = last;
  return address;
}

Owner make_owner(std::uint32_t pid, std::string_view comm, OwnerSource source) {
  Owner owner;
  owner.pid = pid;
  std::memcpy(owner.comm.data(), comm.data(), std::min(comm.size(), owner.comm.size()));
  owner.source = source;
  return owner;
}

void add_time(Connection& conn, TcpState state, std::uint64_t ns) {
  conn.state_ns[*timed_state_index(state)] += ns;
}

// A curl-like client that closed first and left TIME_WAIT.
Connection active_client() {
  Connection conn;
  conn.conn_id = 42;
  conn.owner = make_owner(1234, "curl", OwnerSource::kSyscall);
  conn.laddr = ipv4(10, 0, 0, 1);
  conn.raddr = ipv4(93, 184, 216, 34);
  conn.lport = 45678;
  conn.rport = 443;
  conn.netns_ino = 4026531840U;
  conn.sock_ino = 99;
  conn.role = Role::kClient;
  conn.first_ns = 1000 * kMs;
  conn.end_ns = 1250 * kMs;
  conn.has_handshake = true;
  conn.handshake_us = 25'100;
  set_path(conn, {TcpState::kSynSent, TcpState::kEstablished, TcpState::kFinWait1,
                  TcpState::kFinWait2, TcpState::kClose});
  add_time(conn, TcpState::kSynSent, 25'100'000);
  add_time(conn, TcpState::kEstablished, 200 * kMs);
  add_time(conn, TcpState::kFinWait1, 1 * kMs);
  add_time(conn, TcpState::kFinWait2, 23'900'000);
  conn.tx_bytes = 1234;
  conn.rx_bytes = 3'400'000;
  conn.retransmits = 3;
  conn.syn_retransmits = 1;
  conn.srtt_us = 12'000;
  conn.close = CloseKind::kActive;
  conn.time_wait = true;
  conn.orphan = true;
  return conn;
}

// An nginx-like IPv6 server child whose peer closed first; its SYN-ACK was retransmitted.
Connection passive_server() {
  Connection conn;
  conn.conn_id = 43;
  conn.owner = make_owner(80, "nginx", OwnerSource::kListener);
  conn.laddr = ipv6_documentation(1);
  conn.raddr = ipv6_documentation(0x34);
  conn.lport = 443;
  conn.rport = 51000;
  conn.netns_ino = 4026531840U;
  conn.role = Role::kServer;
  conn.first_ns = 2000 * kMs;
  conn.end_ns = 127'000 * kMs;
  conn.has_handshake = true;
  conn.handshake_us = 850;
  set_path(conn, {TcpState::kSynRecv, TcpState::kEstablished, TcpState::kCloseWait,
                  TcpState::kLastAck, TcpState::kClose});
  add_time(conn, TcpState::kSynRecv, 1000 * kMs);
  add_time(conn, TcpState::kEstablished, 120'000 * kMs);
  add_time(conn, TcpState::kCloseWait, 3999 * kMs);
  add_time(conn, TcpState::kLastAck, 1 * kMs);
  conn.tx_bytes = 5'000'000'000;
  conn.rx_bytes = 512;
  conn.retransmits = 2;
  conn.synack_retransmits = 2;
  conn.srtt_us = 850;
  conn.close = CloseKind::kPassive;
  return conn;
}

// Found in the socket table at start: no owner learned, no birth, no handshake, no error.
Connection preexisting_unknown_owner() {
  Connection conn;
  conn.sock_cookie = 0x1234'5678;
  conn.conn_id = ConnectionTable::kUntrackedIdBit | conn.sock_cookie;
  conn.preexisting = true;
  conn.laddr = ipv4(10, 0, 0, 1);
  conn.raddr = ipv4(10, 0, 0, 2);
  conn.lport = 3306;
  conn.rport = 40000;
  conn.first_ns = 5 * kMs;
  conn.end_ns = 900 * kMs;
  conn.state = TcpState::kClose;
  set_path(conn, {TcpState::kEstablished, TcpState::kCloseWait, TcpState::kClose});
  add_time(conn, TcpState::kCloseWait, 895 * kMs);
  conn.close = CloseKind::kUnknown;
  return conn;
}

Connection refused_client() {
  Connection conn = active_client();
  conn.conn_id = 44;
  conn.has_handshake = false;
  conn.state_ns = {};
  set_path(conn, {TcpState::kSynSent, TcpState::kClose});
  add_time(conn, TcpState::kSynSent, 1 * kMs);
  conn.tx_bytes = 0;
  conn.rx_bytes = 0;
  conn.retransmits = 0;
  conn.syn_retransmits = 0;
  conn.srtt_us = 0;
  conn.error = ECONNREFUSED;
  conn.reset_received = true;
  conn.close = CloseKind::kRefused;
  conn.time_wait = false;
  conn.orphan = false;
  return conn;
}

// connect() found no local port: the socket went back to CLOSE with port 0 and no error of its
// own; the record names connect()'s EADDRNOTAVAIL.
Connection no_port_client() {
  Connection conn = refused_client();
  conn.conn_id = 46;
  conn.lport = 0;
  conn.reset_received = false;
  conn.error = EADDRNOTAVAIL;
  conn.close = CloseKind::kNoPort;
  return conn;
}

// A hostile process name, an errno without a name and more states than the path keeps.
Connection odd_connection() {
  Connection conn = active_client();
  conn.conn_id = 45;
  conn.owner = make_owner(999999, "ev\"il\n\x1b[2J\xff", OwnerSource::kSyscall);
  conn.path = {};
  conn.path.push(TcpState::kSynSent);
  for (int i = 0; i < 20; ++i) {
    conn.path.push(TcpState::kEstablished);
  }
  conn.error = 4000;
  conn.close = CloseKind::kTimeout;
  conn.time_wait = false;
  return conn;
}

Leak make_leak(LeakKind kind, std::uint64_t ts_ms, std::uint64_t age_ms, std::uint64_t threshold_ms,
               std::vector<FdOwner> owners) {
  Leak leak;
  leak.kind = kind;
  leak.ts_ns = ts_ms * kMs;
  leak.age_ns = age_ms * kMs;
  leak.threshold_ns = threshold_ms * kMs;
  leak.orphan = owners.empty();
  leak.owners = std::move(owners);
  return leak;
}

// One of every record the JSON sink writes, with the variations that change a field's type.
std::string write_every_record() {
  std::ostringstream out;
  {
    JsonSink sink(out, kClock, "web-1");
    sink.write(StartRecord{StartInfo{"0.1.0",
                                     "6.1.0-13-amd64",
                                     "--json -p 1234",
                                     900 * kMs,
                                     {"netns", "owners", "first_write_owner", "cgroup"},
                                     "4f0c7c1e-3f5a-4c5e-9d1b-2a6b8c0d1e2f"}});

    const Connection client = active_client();
    const Connection server = passive_server();
    // Identity known (strings) for the client and its reset, not known (nulls) elsewhere.
    CgroupIdentity cgroup;
    cgroup.path = "/system.slice/docker-c.scope";
    cgroup.container_id = "c";
    cgroup.unit = "docker-c.scope";
    const ProcessIdentity process{1, "/usr/bin/curl"};
    sink.write(ConnectionRecord{client, client.end_ns, Identity{&cgroup, &process}});
    sink.write(ConnectionRecord{server, server.end_ns});
    const Connection preexisting = preexisting_unknown_owner();
    sink.write(ConnectionRecord{preexisting, preexisting.end_ns});
    const Connection refused = refused_client();
    sink.write(ConnectionRecord{refused, refused.end_ns});
    const Connection odd = odd_connection();
    sink.write(ConnectionRecord{odd, odd.end_ns});
    const Connection no_port = no_port_client();
    sink.write(ConnectionRecord{no_port, no_port.end_ns});

    sink.write(StateRecord{client, TcpState::kSynSent, TcpState::kEstablished, 25'100'000, true,
                           1025 * kMs});
    sink.write(StateRecord{server, TcpState::kListen, TcpState::kSynRecv, 0, false, 2000 * kMs});
    sink.write(
        StateRecord{preexisting, TcpState::kEstablished, TcpState::kCloseWait, 0, false, 5 * kMs});
    sink.write(StateRecord{odd, static_cast<TcpState>(200), TcpState::kClose, 1, true, 1300 * kMs});

    sink.write(RetransmitRecord{client, TcpState::kSynSent, 1, 1010 * kMs});
    sink.write(RetransmitRecord{server, TcpState::kEstablished, 3, 3000 * kMs});
    RetransmitRecord folded{server, TcpState::kEstablished, 1, 3100 * kMs};
    folded.count = 9;
    folded.last_ts_ns = 4000 * kMs;
    sink.write(folded);
    sink.write(ResetRecord{refused, ResetDirection::kReceived, TcpState::kSynSent, 1001 * kMs});
    sink.write(ResetRecord{client, ResetDirection::kSent, TcpState::kClose, 1250 * kMs,
                           Identity{&cgroup, nullptr}});

    Connection leaking = server;
    leaking.state = TcpState::kCloseWait;
    sink.write(LeakRecord{leaking, make_leak(LeakKind::kCloseWait, 35'000, 31'000, 30'000,
                                             {{1234, "php-fpm", 7}, {1240, "php-fpm", 9}})});
    leaking.state = TcpState::kLastAck;
    Leak to_last_ack = make_leak(LeakKind::kCloseWait, 49'000, 45'200, 30'000,
                                 {{1234, "php-fpm", 7}, {1240, "php-fpm", 9}});
    to_last_ack.went_to = TcpState::kLastAck;
    sink.write(LeakResolvedRecord{leaking, to_last_ack});

    Connection fin_wait2 = preexisting_unknown_owner();
    fin_wait2.state = TcpState::kFinWait2;
    fin_wait2.orphan = true;
    sink.write(LeakRecord{fin_wait2, make_leak(LeakKind::kFinWait2, 70'000, 61'000, 60'000, {})});

    Connection request;  // a request socket, known only from a sweep
    request.conn_id = 0x99;
    request.sock_cookie = 0x99;
    request.preexisting = true;
    request.role = Role::kServer;
    request.state = TcpState::kSynRecv;
    request.laddr = ipv6_documentation(1);
    request.raddr = ipv6_documentation(2);
    request.lport = 443;
    request.rport = 50000;
    Leak half_open = make_leak(LeakKind::kSynRecv, 20'000, 10'500, 10'000, {{80, "nginx", 6}});
    half_open.orphan = false;
    sink.write(LeakRecord{request, half_open});
    sink.write(LeakResolvedRecord{request, half_open});

    TimeWaitPressure pressure;
    pressure.ts_ns = 40'000 * kMs;
    pressure.laddr = ipv4(10, 0, 0, 1);
    pressure.raddr = ipv4(10, 0, 0, 2);
    pressure.rport = 80;
    pressure.netns_ino = 4026532177U;
    pressure.count = 25'000;
    pressure.taken = 25'000;
    pressure.port_range = 28'232;
    pressure.ratio = 25'000.0 / 28'232;
    sink.write(TimeWaitPressureRecord{pressure});  // no name, not growing
    pressure.netns_name = "client";
    pressure.count = pressure.port_range;
    pressure.taken = pressure.port_range;
    pressure.ratio = 1.0;  // written as 1, which JSON readers see as an integer
    pressure.growth_per_s = 400;
    pressure.exhausted_in_ns = 0;
    pressure.tw_reuse = 1;
    pressure.reusable = true;
    sink.write(TimeWaitPressureRecord{pressure});

    Connection open = active_client();
    open.end_ns = 0;
    open.state = TcpState::kEstablished;
    sink.write(InterimRecord{
        open, TcpState::kEstablished, 250, {100, 2000, 0}, {100, 2000, 0}, 50'000 * kMs});
    const Connection found_open = preexisting_unknown_owner();
    sink.write(InterimRecord{
        found_open, TcpState::kCloseWait, 0, {0, 0, 1}, {512, 4096, 3}, 51'000 * kMs});

    StopInfo stop;
    stop.ts_ns = 60'000 * kMs;
    stop.events = 123'456;
    stop.run.lost = 12;
    stop.rejected = 1;
    stop.connections = 5;
    stop.live = 3;
    stop.overflow = 1;
    SummaryCounts counts{3, 2, 0, 1, 1, {}, {}, {}};
    counts.lifetime = Percentiles{1'500, 250'000, 3'000'000};
    counts.handshake = Percentiles{40, 90, 120};
    counts.closes[static_cast<std::size_t>(CloseKind::kActive)] = 2;
    counts.closes[static_cast<std::size_t>(CloseKind::kRefused)] = 1;
    stop.per_process = {{1234, "curl", counts}, {0, "", {1, 0, 0, 0, 0, {}, {}, {}}}};
    stop.per_peer = {{ipv4(93, 184, 216, 34), 443, counts},
                     {ipv6_documentation(0x34), std::nullopt, {1, 0, 0, 1, 0, {}, {}, {}}}};
    Connection still_leaking = server;
    still_leaking.state = TcpState::kCloseWait;
    stop.open_leaks = {{still_leaking, make_leak(LeakKind::kCloseWait, 60'000, 56'000, 30'000,
                                                 {{1234, "php-fpm", 7}})},
                       {fin_wait2, make_leak(LeakKind::kFinWait2, 60'000, 51'000, 60'000, {})}};
    stop.open_leak_count = 2;
    sink.write(StopRecord{stop});
    sink.flush();
  }
  return out.str();
}

std::vector<Json> parse_lines(const std::string& text) {
  std::vector<Json> records;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    records.push_back(Json::parse(line));
  }
  return records;
}

class RecordsSchemaTest : public ::testing::Test {
protected:
  RecordsSchemaTest() : schema_(load_schema()), validator_(schema_) {}

  Json schema_;
  SchemaValidator validator_;
};

TEST_F(RecordsSchemaTest, EveryRecordShapeIsClosedAndDiscriminated) {
  ASSERT_TRUE(schema_.contains("oneOf"));
  for (const Json& branch : schema_["oneOf"]) {
    const std::string title = branch.value("title", "?");
    ASSERT_TRUE(branch["properties"].contains("type")) << title;
    EXPECT_TRUE(branch["properties"]["type"].contains("const")) << title;
    EXPECT_EQ(branch.value("additionalProperties", true), false) << title;
    for (const Json& name : branch["required"]) {
      EXPECT_TRUE(branch["properties"].contains(name.get<std::string>()))
          << title << ": required " << name << " is not a property";
    }
    for (const auto& [name, property] : branch["properties"].items()) {
      ASSERT_NO_THROW((void)validator_.resolve(property)) << title << "." << name;
      EXPECT_TRUE(validator_.resolve(property).contains("description") ||
                  property.contains("description") || name == "type")
          << title << "." << name << " has no description";
    }
  }
}

TEST_F(RecordsSchemaTest, EveryRecordTheSinkWritesMatchesTheSchema) {
  const std::string text = write_every_record();
  ASSERT_FALSE(text.empty());
  ASSERT_EQ(text.back(), '\n');
  const std::vector<Json> records = parse_lines(text);
  ASSERT_GE(records.size(), 20U);

  // Which fields each record shape was seen with, to find documented fields never written.
  std::map<int, std::set<std::string>> seen;
  for (const Json& record : records) {
    int branch = -1;
    const std::vector<std::string> errors = validator_.validate(record, &branch);
    EXPECT_TRUE(errors.empty()) << record.dump() << "\n  " << ::testing::PrintToString(errors);
    if (branch >= 0) {
      for (const auto& [name, unused] : record.items()) {
        seen[branch].insert(name);
      }
    }
  }
  const Json& branches = schema_["oneOf"];
  for (std::size_t i = 0; i < branches.size(); ++i) {
    const std::string title = branches[i].value("title", "?");
    ASSERT_TRUE(seen.contains(static_cast<int>(i))) << "no record written as " << title;
    for (const auto& [name, unused] : branches[i]["properties"].items()) {
      EXPECT_TRUE(seen[static_cast<int>(i)].contains(name))
          << title << "." << name << " is documented but never written";
    }
  }
}

TEST_F(RecordsSchemaTest, NullsAreWrittenWhereTheSchemaAllowsThem) {
  const std::vector<Json> records = parse_lines(write_every_record());
  auto find_connection = [&](std::string_view conn_id) {
    for (const Json& record : records) {
      if (record["type"] == "connection" && record["conn_id"] == conn_id) {
        return record;
      }
    }
    return Json();
  };
  const Json preexisting = find_connection(
      std::to_string(ConnectionTable::kUntrackedIdBit | preexisting_unknown_owner().sock_cookie));
  ASSERT_TRUE(preexisting.is_object());
  EXPECT_TRUE(preexisting["start"].is_null());
  EXPECT_TRUE(preexisting["duration_ms"].is_null());
  EXPECT_TRUE(preexisting["handshake_ms"].is_null());
  EXPECT_TRUE(preexisting["error"].is_null());
  EXPECT_EQ(preexisting["owner_source"], "unknown");
  EXPECT_FALSE(preexisting["states"].contains("ESTABLISHED"));  // found in it: time unknown

  const Json refused = find_connection("44");
  EXPECT_EQ(refused["error"], "ECONNREFUSED");
  EXPECT_EQ(find_connection("45")["error"], "E4000");
  EXPECT_EQ(find_connection("45")["path_truncated"], true);
}

TEST_F(RecordsSchemaTest, NoPortConnectNamesEaddrnotavail) {
  const std::vector<Json> records = parse_lines(write_every_record());
  const auto no_port = std::find_if(records.begin(), records.end(), [](const Json& r) {
    return r["type"] == "connection" && r["conn_id"] == "46";
  });
  ASSERT_NE(no_port, records.end());
  EXPECT_EQ((*no_port)["close"], "no_port");
  EXPECT_EQ((*no_port)["error"], "EADDRNOTAVAIL");
  EXPECT_EQ((*no_port)["lport"], 0);
}

TEST_F(RecordsSchemaTest, EveryCloseKindIsInTheSchema) {
  const Json& names = schema_["$defs"]["close_kind"]["enum"];
  for (std::size_t kind = 0; kind < kCloseKindCount; ++kind) {
    const std::string_view name = close_kind_name(static_cast<CloseKind>(kind));
    EXPECT_NE(std::find(names.begin(), names.end(), std::string(name)), names.end()) << name;
  }
  EXPECT_EQ(names.size(), kCloseKindCount);
  // Every kind can be counted per process and peer.
  const Json& closes = schema_["$defs"]["summary_closes"]["properties"];
  for (std::size_t kind = 0; kind < kCloseKindCount; ++kind) {
    EXPECT_TRUE(closes.contains(close_kind_name(static_cast<CloseKind>(kind))))
        << close_kind_name(static_cast<CloseKind>(kind));
  }
}

TEST_F(RecordsSchemaTest, ValidatorRejectsWhatTheSchemaDoesNot) {
  const std::vector<Json> records = parse_lines(write_every_record());
  const Json& connection = records.at(1);
  ASSERT_EQ(connection["type"], "connection");
  ASSERT_TRUE(validator_.validate(connection).empty());

  Json extra = connection;
  extra["undocumented"] = 1;
  EXPECT_FALSE(validator_.validate(extra).empty());

  Json missing = connection;
  missing.erase("rx_bytes");
  EXPECT_FALSE(validator_.validate(missing).empty());

  Json wrong_type = connection;
  wrong_type["conn_id"] = 42;
  EXPECT_FALSE(validator_.validate(wrong_type).empty());

  Json not_nullable = connection;
  not_nullable["tx_bytes"] = nullptr;
  EXPECT_FALSE(validator_.validate(not_nullable).empty());

  Json bad_enum = connection;
  bad_enum["close"] = "graceful";
  EXPECT_FALSE(validator_.validate(bad_enum).empty());

  Json bad_state = connection;
  bad_state["path"][0] = "SYN-SENT";
  EXPECT_FALSE(validator_.validate(bad_state).empty());

  Json bad_time = connection;
  bad_time["ts"] = "2026-11-22T02:07:49Z";
  EXPECT_FALSE(validator_.validate(bad_time).empty());

  Json reordered = Json::object();
  reordered["conn_id"] = connection["conn_id"];
  for (const auto& [name, value] : connection.items()) {
    reordered[name] = value;
  }
  EXPECT_FALSE(validator_.validate(reordered).empty());

  Json unknown_type = connection;
  unknown_type["type"] = "connections";
  EXPECT_FALSE(validator_.validate(unknown_type).empty());

  // A TIME_WAIT pressure record has its own fields, not a connection's.
  for (const Json& record : records) {
    if (record["type"] == "leak" && record["kind"] == "close_wait") {
      Json pressure = record;
      pressure["kind"] = "time_wait";
      EXPECT_FALSE(validator_.validate(pressure).empty());
    }
  }
}

}  // namespace
}  // namespace tcptrail
