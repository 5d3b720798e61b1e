#pragma once

// Given/Then helpers of the contact-service domain tests (the generic ones, named here).

#include "crm/eventsourcing/testing.h"

namespace crm::contact::testing {

using eventsourcing::testing::Fields;
using eventsourcing::testing::Given;
using eventsourcing::testing::kMonday;

}  // namespace crm::contact::testing
