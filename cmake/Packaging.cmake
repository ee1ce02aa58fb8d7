# Install rules and the Debian package (scripts/dev.sh package, CPack's DEB generator).
# The binary, man page and schema follow CMAKE_INSTALL_PREFIX (/usr in the package); the service
# files have the fixed paths Debian gives them.
include(GNUInstallDirs)

set(TCPTRAIL_PACKAGING_DIR ${PROJECT_SOURCE_DIR}/packaging)

install(TARGETS tcptrail RUNTIME DESTINATION ${CMAKE_INSTALL_SBINDIR})
install(FILES ${PROJECT_SOURCE_DIR}/docs/records.schema.json
        DESTINATION ${CMAKE_INSTALL_DATADIR}/tcptrail)

# Debian ships man pages compressed, with no timestamp in the gzip header (-n).
configure_file(${TCPTRAIL_PACKAGING_DIR}/tcptrail.8 ${CMAKE_BINARY_DIR}/packaging/tcptrail.8 @ONLY)
add_custom_command(
  OUTPUT ${CMAKE_BINARY_DIR}/packaging/tcptrail.8.gz
  COMMAND gzip -9nf -k ${CMAKE_BINARY_DIR}/packaging/tcptrail.8
  DEPENDS ${CMAKE_BINARY_DIR}/packaging/tcptrail.8
  COMMENT "Compressing tcptrail.8")
add_custom_target(tcptrail_man ALL DEPENDS ${CMAKE_BINARY_DIR}/packaging/tcptrail.8.gz)
install(FILES ${CMAKE_BINARY_DIR}/packaging/tcptrail.8.gz DESTINATION ${CMAKE_INSTALL_MANDIR}/man8)

install(FILES ${TCPTRAIL_PACKAGING_DIR}/tcptrail.service DESTINATION /lib/systemd/system)
install(FILES ${TCPTRAIL_PACKAGING_DIR}/tcptrail.default DESTINATION /etc/default
        RENAME tcptrail)
install(FILES ${TCPTRAIL_PACKAGING_DIR}/tcptrail.logrotate DESTINATION /etc/logrotate.d
        RENAME tcptrail)

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME tcptrail)
set(CPACK_PACKAGE_VENDOR "tcptrail")
set(CPACK_PACKAGE_CONTACT "tcptrail maintainers <tcptrail@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "trace the lifecycle of every TCP connection with eBPF")
set(CPACK_PACKAGE_DESCRIPTION
    "tcptrail traces every TCP connection from SYN to CLOSE: owner, 4-tuple, time per state, "
    "handshake, bytes, retransmits, resets and how it ended; it reports sockets stuck in "
    "CLOSE_WAIT, FIN_WAIT2 or SYN_RECV and TIME_WAIT pressure. Text or NDJSON; a hardened "
    "systemd service writes NDJSON under /var/log/tcptrail.")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
# dpkg-shlibdeps names the runtime libraries: libbpf1 (libelf1 and zlib1g come with it),
# libcpp-httplib0.11, libnettle8, libstdc++6, libgcc-s1, libc6.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS logrotate)
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${TCPTRAIL_PACKAGING_DIR}/conffiles ${TCPTRAIL_PACKAGING_DIR}/postinst
    ${TCPTRAIL_PACKAGING_DIR}/prerm ${TCPTRAIL_PACKAGING_DIR}/postrm)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
include(CPack)
